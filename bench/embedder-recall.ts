import { readFileSync } from 'node:fs';
import type { Embedder } from '../shared/ports/embedder.ts';

/**
 * Paraphrase recall of an embedder: every question in bench/data/paraphrases.json is answered by one
 * memory that shares none of its content words, so only meaning can find it. Ranking is exact cosine
 * over all memories (no index), so the figure measures the embedder alone.
 */
export interface ParaphraseRecall {
  recallAt1: number;
  recallAt5: number;
  recallAt10: number;
  questions: number;
  memories: number;
}

interface ParaphraseSet {
  memories: { id: string; topic: string; text: string }[];
  questions: { id: string; memoryId: string; text: string }[];
}

const DATA_PATH = new URL('./data/paraphrases.json', import.meta.url);

export function loadParaphraseSet(): ParaphraseSet {
  return JSON.parse(readFileSync(DATA_PATH, 'utf8')) as ParaphraseSet;
}

export async function measureParaphraseRecall(embedder: Embedder): Promise<ParaphraseRecall> {
  const { memories, questions } = loadParaphraseSet();
  await embedder.warm();
  const memoryVectors = await embedder.embed(memories.map((m) => m.text));
  const questionVectors = await embedder.embed(questions.map((q) => q.text));
  const hits = { 1: 0, 5: 0, 10: 0 };
  questions.forEach((question, qi) => {
    const scores = memoryVectors.map((vector, mi) => ({ id: memories[mi].id, score: cosine(questionVectors[qi], vector) }));
    scores.sort((a, b) => b.score - a.score);
    const rank = scores.findIndex((s) => s.id === question.memoryId);
    if (rank === 0) hits[1] += 1;
    if (rank >= 0 && rank < 5) hits[5] += 1;
    if (rank >= 0 && rank < 10) hits[10] += 1;
  });
  const n = questions.length;
  return {
    recallAt1: hits[1] / n,
    recallAt5: hits[5] / n,
    recallAt10: hits[10] / n,
    questions: n,
    memories: memories.length,
  };
}

/**
 * Embedding throughput on memory-like texts (~20 words), in batches of 64 as the reindex job sends
 * them. Texts are all distinct, so per-token caches see realistic reuse, not one repeated string.
 */
export async function measureEmbedThroughput(
  embedder: Embedder,
  options: { texts?: number; batchSize?: number } = {},
): Promise<{ textsPerSecond: number }> {
  const total = options.texts ?? 5_000;
  const batchSize = options.batchSize ?? 64;
  const { memories } = loadParaphraseSet();
  const texts = Array.from({ length: total }, (_, i) => {
    const a = memories[i % memories.length].text;
    const b = memories[(i * 7 + 3) % memories.length].text;
    return `${a} ${b} #${i}`;
  });
  await embedder.warm();
  const started = performance.now();
  for (let i = 0; i < texts.length; i += batchSize) await embedder.embed(texts.slice(i, i + batchSize));
  const seconds = (performance.now() - started) / 1000;
  return { textsPerSecond: total / seconds };
}

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i += 1) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
