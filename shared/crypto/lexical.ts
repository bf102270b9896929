import { createHmac } from 'node:crypto';

const STOPWORDS = new Set(
  'a an and are as at be been but by do does did for from had has have he her him his i if in into is it its me my no not of on or our she so than that the their them then there these they this to too was we were what when where which who why will with you your yours i\'m im'.split(' '),
);

/** Words of a text as the lexical index sees them: lowercase, unicode letters/digits, light stemming. */
export function lexicalTerms(text: string): string[] {
  const words = text.toLowerCase().normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? [];
  const terms = new Set<string>();
  for (const w of words) {
    if (w.length < 2 || STOPWORDS.has(w)) continue;
    terms.add(stem(w));
  }
  return [...terms];
}

function stem(w: string): string {
  if (w.length > 5 && w.endsWith('ing')) return w.slice(0, -3);
  if (w.length > 4 && w.endsWith('ies')) return `${w.slice(0, -3)}y`;
  if (w.length > 4 && w.endsWith('ed')) return w.slice(0, -2);
  if (w.length > 3 && w.endsWith('es') && /(ss|x|ch|sh)es$/.test(w)) return w.slice(0, -2);
  if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

/**
 * Blind tokens: each term HMAC-ed with a per-tenant key and truncated. The database can match and
 * count overlapping tokens without ever seeing plaintext words; another tenant's tokens differ.
 */
export function blindTokens(key: Uint8Array, terms: string[]): string[] {
  return terms.map((t) => createHmac('sha256', key).update(t).digest('base64url').slice(0, 12));
}
