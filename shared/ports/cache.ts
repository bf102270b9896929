/**
 * Transient cache. Losing it must only slow things down: adapters never throw to callers for
 * connectivity problems; `get` answers `undefined` and writes are dropped.
 */
export interface Cache {
  readonly kind: string;
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  /** Atomically increments a counter, creating it with `ttlSeconds`; `undefined` when the cache is unavailable. */
  incr(key: string, ttlSeconds: number): Promise<number | undefined>;
  /** true when the backing store answered recently (for /health) */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}
