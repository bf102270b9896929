/**
 * The one recall score. /memory/query ranks with it and /api/v1/explain reports its parts, so an
 * explanation can never drift from the ranking it explains.
 *
 *   relevance = (1 − LEXICAL_SHARE) · max(0, cosine) + LEXICAL_SHARE · lexical     (lexical only when degraded)
 *   recency   = 0.5 ^ (age_days / RECENCY_HALF_LIFE_DAYS)
 *   final     = (w_s · relevance + w_r · recency + w_i · importance) / (w_s + w_r + w_i)
 */
export interface RecallWeights {
  semantic: number;
  recency: number;
  importance: number;
}

export const DEFAULT_WEIGHTS: Readonly<RecallWeights> = Object.freeze({ semantic: 0.85, recency: 0.1, importance: 0.05 });
/** inside "semantic": how much the blind-token lexical overlap adds to the vector similarity */
export const LEXICAL_SHARE = 0.25;
export const RECENCY_HALF_LIFE_DAYS = 30;

export interface ScoreSignals {
  /** cosine similarity from the vector index; negative values count as 0 */
  semantic: number;
  /** share of the query's terms found in the memory, 0..1 */
  lexical: number;
  createdAt: Date;
  importance: number;
  now: Date;
  /** the semantic path failed: relevance is lexical only */
  degraded?: boolean;
}

export interface ScoreBreakdown {
  semantic: number;
  lexical: number;
  /** the blended similarity that the semantic weight multiplies */
  relevance: number;
  recency: number;
  importance: number;
  age_days: number;
  /** the weights as given (before normalisation) */
  weights: RecallWeights;
  /** each signal's weighted share of the final score; they sum to `final` */
  contributions: { semantic: number; recency: number; importance: number };
  final: number;
}

/** Caller weights over the defaults; a key left out keeps its default. */
export const resolveWeights = (partial?: Partial<RecallWeights>): RecallWeights => ({ ...DEFAULT_WEIGHTS, ...(partial ?? {}) });

export function scoreMemory(signals: ScoreSignals, weights: RecallWeights = DEFAULT_WEIGHTS): ScoreBreakdown {
  const semantic = Math.max(0, signals.semantic);
  const lexical = Math.min(1, Math.max(0, signals.lexical));
  const relevance = signals.degraded ? lexical : (1 - LEXICAL_SHARE) * semantic + LEXICAL_SHARE * lexical;
  const ageDays = Math.max(0, (signals.now.getTime() - signals.createdAt.getTime()) / 86_400_000);
  const recency = Math.pow(0.5, ageDays / RECENCY_HALF_LIFE_DAYS);
  const importance = signals.importance;
  const total = weights.semantic + weights.recency + weights.importance || 1;
  const contributions = {
    semantic: (weights.semantic * relevance) / total,
    recency: (weights.recency * recency) / total,
    importance: (weights.importance * importance) / total,
  };
  return {
    semantic, lexical, relevance, recency, importance, age_days: ageDays, weights: { ...weights }, contributions,
    final: contributions.semantic + contributions.recency + contributions.importance,
  };
}
