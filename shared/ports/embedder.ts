/** Turns texts into vectors. Implementations must be deterministic for a given model. */
export interface Embedder {
  /** a stable identifier of the model, stored with vectors so a model change is detectable */
  readonly model: string;
  readonly dimension: number;
  /** Loads the model; resolves when the first embed would be fast. */
  warm(): Promise<void>;
  embed(texts: string[]): Promise<number[][]>;
  /** Optional: gets ready for many large batches (the local embedder starts its worker threads). */
  warmBulk?(): Promise<void>;
  /** Optional: releases threads or connections. */
  close?(): Promise<void>;
}
