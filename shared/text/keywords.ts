/**
 * Plain-text helpers shared by the offline summarizer and the derived views: sentence splitting and
 * content words (lowercase, stop words removed). Not used for the lexical index, which has its own
 * stemming and blinding (shared/crypto/lexical.ts).
 */
const STOP_WORDS = new Set(
  ('a about above after again against all also am an and any are as at be because been before being below between both but by can ' +
    'could did do does doing down during each few for from further had has have having he her here hers herself him himself his how i ' +
    'if in into is it its itself just let like me more most my myself no nor not now of off on once only or other our ours ourselves out ' +
    'over own same she should so some such than that the their theirs them themselves then there these they this those through to too ' +
    'under until up very was we were what when where which while who whom why will with would you your yours yourself yourselves im ' +
    "i'm i've i'd i'll it's don't didn't doesn't isn't wasn't can't won't get got one two new use used really much many still even").split(' '),
);

/** Sentences of a text, split at terminal punctuation and line breaks; empty pieces dropped. */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => /[\p{L}\p{N}]/u.test(s));
}

/** Lowercase words of at least three characters that are not stop words, in order, with repeats. */
export function contentWords(text: string): string[] {
  const words = text.toLowerCase().normalize('NFKC').match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? [];
  return words.map((w) => w.replace(/['’-]+$/, '')).filter((w) => w.length >= 3 && !STOP_WORDS.has(w) && !/^\d+$/.test(w));
}

/** The `n` most frequent content words across texts (ties broken by first appearance). */
export function topKeywords(texts: string[], n: number): Array<{ word: string; count: number }> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of contentWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts.entries()]
    .map(([word, count], order) => ({ word, count, order }))
    .sort((a, b) => b.count - a.count || a.order - b.order)
    .slice(0, n)
    .map(({ word, count }) => ({ word, count }));
}
