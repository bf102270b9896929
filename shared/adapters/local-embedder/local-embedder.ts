import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Embedder } from '../../ports/embedder.ts';
import { FUNCTION_WORDS } from './function-words.ts';
import { baseFormCandidates, stripDiacritics, tokenize } from './tokenize.ts';
import { decodeVocabulary } from './vocabulary-format.ts';
import { createEmbedPool, type EmbedPool } from './embed-pool.ts';

/**
 * Knobs of the local embedder. Changing any default changes the vectors, so it must come with a new
 * `LOCAL_EMBEDDER_MODEL` version (stored vectors are re-embedded when the model string changes).
 */
export interface LocalEmbedderTuning {
  /** total output dimensions: the word vector's dims, the rest are hashed character n-grams */
  dimension: number;
  /** SIF smoothing `a` in a/(a + p(w)); smaller = frequent words count less */
  sifA: number;
  /** share of the cosine similarity that comes from character n-grams (0..1) */
  ngramShare: number;
  minGram: number;
  maxGram: number;
  /** frequency rank assumed for function words and unknown one-letter tokens */
  functionWordRank: number;
  /** frequency rank assumed for words missing from the vocabulary */
  unknownWordRank: number;
}

export const LOCAL_EMBEDDER_MODEL = 'local-sif-wink100-v1';

export const DEFAULT_TUNING: Readonly<LocalEmbedderTuning> = Object.freeze({
  dimension: 256,
  sifA: 1e-3,
  ngramShare: 0.3,
  minGram: 3,
  maxGram: 5,
  functionWordRank: 5,
  unknownWordRank: 100_000,
});

export interface LocalEmbedderOptions {
  /** the vocabulary file; defaults to the one shipped next to this module */
  vocabularyPath?: string;
  /** for experiments (bench); any change gives a model string that is not the default's */
  tuning?: Partial<LocalEmbedderTuning>;
  /** worker threads for big batches (`EMBED_WORKERS`); 0 = every text is embedded on the calling thread */
  workers?: number;
  /** batches of at least this many texts go to the workers once they are running (default 128) */
  poolMinBatch?: number;
  /** workers idle this long are stopped, and started again by the next big batch (default 30 s) */
  poolIdleMs?: number;
}

/** The local embedder, with counters of where its texts were embedded (tests, bench). */
export interface LocalEmbedder extends Embedder {
  readonly stats: { pooled: number; inThread: number; poolFailures: number };
  warmBulk(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_VOCABULARY_PATH = fileURLToPath(new URL('./data/vocabulary.bin', import.meta.url));
/** Zipf's law: p(rank r) ≈ 1 / ((r + 1) · H), H ≈ ln(V) + γ for the upstream ~400k-word vocabulary. */
const ZIPF_NORMALISER = Math.log(400_000) + 0.5772;
const TOKEN_CACHE_LIMIT = 100_000;
const YIELD_EVERY = 500;

interface LoadedVocabulary {
  dims: number;
  index: Map<string, number>;
  ranks: Uint32Array;
  scales: Float32Array;
  vectors: Int8Array;
}

/** Once per process and file: the vocabulary is ~20 MB in memory and identical for every embedder. */
const vocabularies = new Map<string, LoadedVocabulary>();

function loadVocabulary(path: string): LoadedVocabulary {
  let loaded = vocabularies.get(path);
  if (!loaded) {
    const { dims, words, ranks, scales, vectors } = decodeVocabulary(readFileSync(path));
    const index = new Map<string, number>();
    words.forEach((word, i) => index.set(word, i));
    loaded = { dims, index, ranks, scales, vectors };
    vocabularies.set(path, loaded);
  }
  return loaded;
}

/** What one distinct token contributes; cached because the same words recur across texts. */
interface TokenFeatures {
  /** vocabulary row, or -1 */
  row: number;
  weight: number;
  /** n-gram buckets, sign in the lowest bit: value = bucket * 2 + (negative ? 1 : 0) */
  grams: Int32Array;
}

/**
 * An offline embedder: the SIF-weighted average of English word vectors (Arora et al., 2017,
 * "A simple but tough-to-beat baseline for sentence embeddings"), concatenated with SIF-weighted,
 * signed, hashed character n-grams (as in fastText) so unknown words, names and typos still match.
 * Both halves are L2-normalised, scaled so `ngramShare` of the cosine comes from n-grams, and the
 * result is unit-length. Needs no network and ~5 MB on disk.
 */
export function createLocalEmbedder(options: LocalEmbedderOptions = {}): LocalEmbedder {
  const tuning: LocalEmbedderTuning = { ...DEFAULT_TUNING, ...options.tuning };
  const isDefault = (Object.keys(DEFAULT_TUNING) as (keyof LocalEmbedderTuning)[]).every(
    (key) => tuning[key] === DEFAULT_TUNING[key],
  );
  const model = isDefault
    ? LOCAL_EMBEDDER_MODEL
    : `${LOCAL_EMBEDDER_MODEL}-custom(${JSON.stringify(tuning)})`;
  const path = options.vocabularyPath ?? DEFAULT_VOCABULARY_PATH;
  const wordShare = Math.sqrt(1 - tuning.ngramShare);
  const gramShare = Math.sqrt(tuning.ngramShare);
  const tokenCache = new Map<string, TokenFeatures>();
  let vocabulary: LoadedVocabulary | undefined;
  let gramBuckets = 0;

  const vocab = () => {
    if (!vocabulary) {
      vocabulary = loadVocabulary(path);
      gramBuckets = tuning.dimension - vocabulary.dims;
      if (gramBuckets < 16) throw new Error(`dimension must exceed the word vectors' ${vocabulary.dims} dims by at least 16`);
    }
    return vocabulary;
  };

  const sifWeight = (rank: number) => tuning.sifA / (tuning.sifA + 1 / ((rank + 1) * ZIPF_NORMALISER));

  const lookup = (token: string, v: LoadedVocabulary): number => {
    const exact = v.index.get(token);
    if (exact !== undefined) return exact;
    const plain = stripDiacritics(token);
    const unaccented = plain === token ? undefined : v.index.get(plain);
    if (unaccented !== undefined) return unaccented;
    for (const candidate of baseFormCandidates(plain)) {
      const row = v.index.get(candidate);
      if (row !== undefined) return row;
    }
    return -1;
  };

  const featuresOf = (token: string): TokenFeatures => {
    let features = tokenCache.get(token);
    if (features) return features;
    const v = vocab();
    const row = lookup(token, v);
    let rank = row >= 0 ? v.ranks[row] : tuning.unknownWordRank;
    if (FUNCTION_WORDS.has(token) || (row < 0 && token.length === 1 && /^[a-z]$/.test(token))) {
      rank = Math.min(rank, tuning.functionWordRank);
    }
    features = { row, weight: sifWeight(rank), grams: hashGrams(token, tuning.minGram, tuning.maxGram, gramBuckets) };
    if (tokenCache.size >= TOKEN_CACHE_LIMIT) tokenCache.clear();
    tokenCache.set(token, features);
    return features;
  };

  // Scratch sums, reused (zeroed) for every text instead of allocated per text.
  let word = new Float64Array(0);
  let grams = new Float64Array(0);
  const embedOne = (text: string): number[] => {
    const v = vocab();
    const dims = v.dims;
    if (word.length !== dims) word = new Float64Array(dims);
    if (grams.length !== gramBuckets) grams = new Float64Array(gramBuckets);
    word.fill(0);
    grams.fill(0);
    let tokens = tokenize(text);
    // Only symbols or emoji: still give them an identity through their characters.
    if (tokens.length === 0 && text.trim()) tokens = [text.trim().slice(0, 64)];
    for (const token of tokens) {
      const f = featuresOf(token);
      if (f.row >= 0) {
        const base = f.row * dims;
        const w = f.weight * v.scales[f.row];
        for (let d = 0; d < dims; d += 1) word[d] += w * v.vectors[base + d];
      }
      const g = f.weight / Math.sqrt(f.grams.length);
      for (let i = 0; i < f.grams.length; i += 1) {
        const code = f.grams[i];
        grams[code >> 1] += code & 1 ? -g : g;
      }
    }
    if (tokens.length === 0) grams[0] = 1; // empty text: one fixed unit vector
    const wordNorm = norm(word);
    const gramNorm = norm(grams);
    const out = new Array<number>(tuning.dimension);
    // Without known words (or without n-grams) the other half carries the whole unit length.
    const ws = gramNorm > 0 ? wordShare : 1;
    const gs = wordNorm > 0 ? gramShare : 1;
    for (let d = 0; d < dims; d += 1) out[d] = wordNorm > 0 ? (ws * word[d]) / wordNorm : 0;
    for (let b = 0; b < gramBuckets; b += 1) out[dims + b] = gramNorm > 0 ? (gs * grams[b]) / gramNorm : 0;
    return out;
  };

  const embedHere = async (texts: string[]): Promise<number[][]> => {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += 1) {
      // Big batches (reindex) must not starve the event loop of the local server.
      if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      out.push(embedOne(texts[i]));
    }
    stats.inThread += texts.length;
    return out;
  };

  // The same vectors on any thread: the workers run this function with the same options.
  const stats = { pooled: 0, inThread: 0, poolFailures: 0 };
  const workers = Math.max(0, Math.floor(options.workers ?? 0));
  const poolMinBatch = Math.max(1, options.poolMinBatch ?? 128);
  let pool: EmbedPool | undefined =
    workers > 0
      ? createEmbedPool({ size: workers, dimension: tuning.dimension, idleMs: options.poolIdleMs, embedderOptions: { vocabularyPath: options.vocabularyPath, tuning: options.tuning } })
      : undefined;
  /** A pool that cannot start or dies is given up for this embedder: the calling thread does the work. */
  const givenUp = (error: unknown) => {
    stats.poolFailures += 1;
    const dead = pool;
    pool = undefined;
    void dead?.close();
    return error;
  };

  return {
    model,
    dimension: tuning.dimension,
    stats,
    async warm() {
      vocab();
    },
    async warmBulk() {
      vocab();
      await pool?.start().catch(givenUp);
    },
    async embed(texts) {
      if (pool && texts.length >= poolMinBatch) {
        if (pool.ready) {
          try {
            const vectors = await pool.embed(texts);
            stats.pooled += texts.length;
            return vectors;
          } catch (error) {
            givenUp(error);
          }
        } else {
          // not started yet: start it for the next big batch, embed this one here without waiting
          void pool.start().catch(givenUp);
        }
      }
      return embedHere(texts);
    },
    async close() {
      await pool?.close();
    },
  };
}

function norm(values: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i += 1) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

/** fastText-style n-grams of "<token>" plus the whole padded token, FNV-1a hashed into signed buckets. */
function hashGrams(token: string, minGram: number, maxGram: number, buckets: number): Int32Array {
  const padded = `<${token}>`;
  const codes: number[] = [];
  const add = (start: number, end: number) => {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i += 1) h = Math.imul(h ^ padded.charCodeAt(i), 0x01000193);
    h >>>= 0;
    codes.push((h % buckets) * 2 + (h >>> 31));
  };
  for (let n = minGram; n <= maxGram; n += 1) {
    for (let start = 0; start + n <= padded.length; start += 1) add(start, start + n);
  }
  if (padded.length > maxGram || padded.length < minGram) add(0, padded.length);
  return Int32Array.from(codes);
}
