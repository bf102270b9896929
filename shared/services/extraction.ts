/**
 * The offline extraction pipeline: cheap, deterministic classification of a memory's text. It does
 * not call a model; it labels type, estimates quality and splits key points so the fields of the
 * contract are meaningful without an LLM. A model-backed pipeline can replace it behind the same shape.
 */
export interface Extraction {
  memoryType: string;
  qualityScore: number;
  summary: string | null;
  keyPoints: string[];
}

const TYPE_RULES: Array<[string, RegExp]> = [
  ['decision', /\b(decided|decide|decision|we will|we'll|going with|chose|choose|agreed to|settled on)\b/i],
  ['preference', /\b(prefer|prefers|like|likes|love|loves|hate|hates|favou?rite|dislike|dislikes|enjoy|enjoys|allergic)\b/i],
  ['event', /\b(yesterday|today|tomorrow|last (week|month|year)|on (monday|tuesday|wednesday|thursday|friday|saturday|sunday)|meeting|appointment|birthday|\d{4}-\d{2}-\d{2})\b/i],
  ['goal', /\b(want to|plan to|planning to|goal|aim to|hope to|intend to)\b/i],
  ['insight', /\b(learned|realized|realised|noticed|turns out|insight)\b/i],
];

export function extract(text: string): Extraction {
  const memoryType = TYPE_RULES.find(([, re]) => re.test(text))?.[0] ?? 'fact';
  const sentences = text.split(/(?<=[.!?])\s+|\n+/).map((s) => s.trim()).filter((s) => s.length > 0);
  const words = text.match(/[\p{L}\p{N}]+/gu) ?? [];
  const distinct = new Set(words.map((w) => w.toLowerCase())).size;
  // Longer, lexically richer texts carry more information; very short or repetitive ones less.
  const qualityScore = Math.max(0.1, Math.min(1, 0.3 + Math.min(words.length, 40) / 80 + (words.length ? distinct / words.length : 0) * 0.2));
  const summary = sentences.length > 1 || text.length > 200 ? truncate(sentences[0] ?? text, 200) : null;
  const keyPoints = sentences.length > 1 ? sentences.slice(0, 5).map((s) => truncate(s, 160)) : [];
  return { memoryType, qualityScore: Math.round(qualityScore * 100) / 100, summary, keyPoints };
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
