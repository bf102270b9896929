/**
 * The trimmed word-vector vocabulary the local embedder ships with, and its binary file format.
 * Uncompressed on purpose: int8 vectors barely compress, and raw arrays load as zero-copy views.
 *
 * All little-endian; every array starts 4-byte aligned:
 *
 * | field    | type                  | meaning                                                             |
 * |----------|-----------------------|---------------------------------------------------------------------|
 * | magic    | 4 bytes "MSWV"        | identifies the format                                               |
 * | version  | u16                   | format version, currently 1                                         |
 * | dims     | u16                   | dimensions per word vector (100)                                    |
 * | count    | u32                   | number of words N                                                   |
 * | wordsLen | u32                   | byte length of the words block                                      |
 * | ranks    | u32 × N               | each word's frequency rank (0 = most frequent) in the upstream list |
 * | scales   | f32 × N               | per-vector quantisation scale                                       |
 * | vectors  | i8 × N × dims         | word vector i is `vectors[i*dims + d] * scales[i]`                  |
 * | words    | UTF-8, `\n`-separated | the N words, most frequent first                                    |
 *
 * The upstream list has no counts, only a frequency order, so word probabilities for SIF weights are
 * estimated from the rank with Zipf's law (see local-embedder.ts).
 */
export interface Vocabulary {
  readonly dims: number;
  readonly words: readonly string[];
  /** upstream frequency rank of each word, 0 = most frequent */
  readonly ranks: Uint32Array;
  readonly scales: Float32Array;
  /** row-major int8 vectors, `words.length * dims` values */
  readonly vectors: Int8Array;
}

const MAGIC = 'MSWV';
const FORMAT_VERSION = 1;
const HEADER_BYTES = 16;

export function encodeVocabulary(vocabulary: Vocabulary): Buffer {
  const { dims, words, ranks, scales, vectors } = vocabulary;
  const count = words.length;
  if (ranks.length !== count || scales.length !== count || vectors.length !== count * dims) {
    throw new Error('vocabulary arrays do not match the word count');
  }
  if (words.some((w) => w.includes('\n') || w.length === 0)) throw new Error('words must be non-empty and single-line');
  const wordBytes = Buffer.from(words.join('\n'), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt16LE(FORMAT_VERSION, 4);
  header.writeUInt16LE(dims, 6);
  header.writeUInt32LE(count, 8);
  header.writeUInt32LE(wordBytes.length, 12);
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return Buffer.concat([header, bytes(Uint32Array.from(ranks)), bytes(Float32Array.from(scales)), bytes(vectors), wordBytes]);
}

export function decodeVocabulary(file: Uint8Array): Vocabulary {
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('the vocabulary format needs a little-endian CPU');
  // Typed-array views need 4-byte alignment; a pooled Buffer may not give it, so copy then.
  const raw = file.byteOffset % 4 === 0 ? file : new Uint8Array(file);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = String.fromCharCode(...raw.subarray(0, 4));
  if (raw.length < HEADER_BYTES || magic !== MAGIC) throw new Error('not a vocabulary file');
  const version = view.getUint16(4, true);
  if (version !== FORMAT_VERSION) throw new Error(`unsupported vocabulary format version ${version}`);
  const dims = view.getUint16(6, true);
  const count = view.getUint32(8, true);
  const wordsLen = view.getUint32(12, true);
  if (raw.length !== HEADER_BYTES + count * 8 + count * dims + wordsLen) throw new Error('vocabulary file is truncated or inconsistent');
  let offset = raw.byteOffset + HEADER_BYTES;
  const ranks = new Uint32Array(raw.buffer, offset, count);
  offset += count * 4;
  const scales = new Float32Array(raw.buffer, offset, count);
  offset += count * 4;
  const vectors = new Int8Array(raw.buffer, offset, count * dims);
  offset += count * dims;
  const words = new TextDecoder().decode(new Uint8Array(raw.buffer, offset, wordsLen)).split('\n');
  if (words.length !== count) throw new Error('vocabulary file is truncated or inconsistent');
  return { dims, words, ranks, scales, vectors };
}
