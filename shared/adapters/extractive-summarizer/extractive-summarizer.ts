import type { SummarizeOptions, Summarizer } from '../../ports/summarizer.ts';
import { contentWords, splitSentences } from '../../text/keywords.ts';

export interface ExtractiveSummarizerOptions {
  /** sentences sharing more than this share of words with a chosen one are skipped as repeats */
  redundancy?: number;
  /** characters kept of one sentence */
  maxSentenceChars?: number;
}

const defaults = { redundancy: 0.6, maxSentenceChars: 400 } as const;

interface Candidate {
  text: string;
  words: Set<string>;
  order: number;
  score: number;
}

/**
 * Offline extractive summarizer: scores each sentence by how many of the set's recurring content words
 * it carries (words seen in several memories weigh more), picks the best non-redundant sentences and
 * returns them in their original order. Deterministic, no model, no network.
 */
export function createExtractiveSummarizer(options: ExtractiveSummarizerOptions = {}): Summarizer {
  const opts = { ...defaults, ...options };
  return {
    async summarize(texts: string[], { maxSentences }: SummarizeOptions): Promise<string> {
      const docFrequency = new Map<string, number>();
      const termFrequency = new Map<string, number>();
      const candidates: Candidate[] = [];
      for (const text of texts) {
        const seen = new Set<string>();
        for (const sentence of splitSentences(text)) {
          const words = contentWords(sentence);
          for (const w of words) {
            termFrequency.set(w, (termFrequency.get(w) ?? 0) + 1);
            seen.add(w);
          }
          candidates.push({ text: clip(sentence, opts.maxSentenceChars), words: new Set(words), order: candidates.length, score: 0 });
        }
        for (const w of seen) docFrequency.set(w, (docFrequency.get(w) ?? 0) + 1);
      }
      if (candidates.length === 0) return '';
      for (const c of candidates) {
        let sum = 0;
        for (const w of c.words) sum += (docFrequency.get(w) ?? 0) * 2 + (termFrequency.get(w) ?? 0);
        // Square-root length normalisation: long sentences carry more words but should not win by length alone.
        c.score = c.words.size ? sum / Math.sqrt(c.words.size) : 0;
      }
      const chosen: Candidate[] = [];
      for (const c of [...candidates].sort((a, b) => b.score - a.score || a.order - b.order)) {
        if (chosen.length >= Math.max(1, maxSentences)) break;
        if (chosen.some((x) => overlap(x.words, c.words) > opts.redundancy || x.text === c.text)) continue;
        chosen.push(c);
      }
      return chosen
        .sort((a, b) => a.order - b.order)
        .map((c) => (/[.!?…]$/.test(c.text) ? c.text : `${c.text}.`))
        .join(' ');
    },
  };
}

function overlap(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const w of a) if (b.has(w)) shared++;
  return shared / Math.min(a.size, b.size);
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
