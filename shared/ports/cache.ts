/**
 * Transient cache. Losing it must only slow things down: adapters never throw to callers for
 * connectivity problems; `get` answers `undefined` and writes are dropped.
 */
export interface Cache {
  readonly kind: string;
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  /**
   * Deletes every entry whose key starts with `prefix` (a literal prefix, no patterns), e.g. all cached
   * query results of one end user on purge or of one tenant on deletion. Answers how many entries it
   * removed, or `undefined` when the cache could not be scanned to the end (unavailable): entries may
   * then remain until their TTL. An empty prefix is refused (never a way to flush the cache).
   */
  deletePrefix(prefix: string): Promise<number | undefined>;
  /** Atomically increments a counter, creating it with `ttlSeconds`; `undefined` when the cache is unavailable. */
  incr(key: string, ttlSeconds: number): Promise<number | undefined>;
  /** true when the backing store answered recently (for /health) */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}
