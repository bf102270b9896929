/** Caps the work one text can cost; an average over the first 32k characters says enough about the rest. */
export const MAX_TEXT_CHARS = 32_768;

const CONTRACTIONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bcan['’]t\b/g, 'can not'],
  [/\bwon['’]t\b/g, 'will not'],
  [/n['’]t\b/g, ' not'],
  // possessive and pronoun clitics ('s, 're, 'm, 'll, 've, 'd) are function words: drop them
  [/['’](?:s|re|m|ll|ve|d)\b/g, ''],
];
const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const COMBINING_MARKS = /\p{M}+/gu;

/** Lowercased, NFKC-normalised word tokens (letters, marks and digits), contractions expanded. */
export function tokenize(text: string): string[] {
  let normalised = text.slice(0, MAX_TEXT_CHARS).normalize('NFKC').toLowerCase();
  for (const [pattern, replacement] of CONTRACTIONS) normalised = normalised.replace(pattern, replacement);
  return normalised.match(WORD) ?? [];
}

/** "café" → "cafe"; returns the input when it has no diacritics. */
export function stripDiacritics(token: string): string {
  return token.normalize('NFD').replace(COMBINING_MARKS, '');
}

const VOWEL = /[aeiouy]/;

/**
 * Base forms to try, in order, when a token is not in the vocabulary: regular plurals, past tenses,
 * gerunds and -ly adverbs. Cheap rules rather than a real stemmer: every candidate is checked against
 * the vocabulary, so a wrong guess just misses.
 */
export function baseFormCandidates(token: string): string[] {
  const out: string[] = [];
  const n = token.length;
  if (n < 4) return out;
  const undouble = (stem: string) =>
    stem.length > 2 && stem[stem.length - 1] === stem[stem.length - 2] && !VOWEL.test(stem[stem.length - 1])
      ? stem.slice(0, -1)
      : undefined;
  const pushStem = (stem: string) => {
    if (stem.length < 2) return;
    out.push(stem, `${stem}e`);
    const single = undouble(stem);
    if (single) out.push(single);
  };
  if (token.endsWith('ies')) out.push(`${token.slice(0, -3)}y`);
  if (token.endsWith('es')) out.push(token.slice(0, -2));
  if (token.endsWith('s') && !token.endsWith('ss')) out.push(token.slice(0, -1));
  if (token.endsWith('ied')) out.push(`${token.slice(0, -3)}y`);
  if (token.endsWith('ed')) pushStem(token.slice(0, -2));
  if (token.endsWith('ing') && n > 5) pushStem(token.slice(0, -3));
  if (token.endsWith('ly') && n > 5) out.push(token.slice(0, -2));
  return out;
}
