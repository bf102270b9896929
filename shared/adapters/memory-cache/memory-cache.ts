import type { Cache } from '../../ports/cache.ts';
import type { Clock } from '../../ports/clock.ts';
import { systemClock } from '../../ports/clock.ts';

export interface MemoryCacheOptions {
  /** entries kept before the least recently used one is evicted */
  maxEntries?: number;
  /** time source for TTLs; tests inject a manual clock instead of sleeping */
  clock?: Clock;
}

const defaults = { maxEntries: 10_000, clock: systemClock } as const;

interface Entry {
  /** values are kept serialised so callers can never mutate what is cached */
  json: string;
  expiresAt: number;
}

export interface MemoryCache extends Cache {
  /** the live (unexpired) keys, for tests that check what a deletion left behind */
  keys(): string[];
}

/**
 * In-process TTL cache for the local runtime and tests. Behaves like the Redis adapter as far as
 * callers can tell: JSON round trips (a Date comes back as a string), counters readable with `get`,
 * `incr` windows that start at creation and are not extended by increments.
 *
 * A Map is already an insertion-ordered LRU when an entry is re-inserted on every hit, so this needs
 * no dependency; `lru-cache` would also read time from `performance.now()` rather than our Clock.
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): MemoryCache {
  const maxEntries = Math.max(1, options.maxEntries ?? defaults.maxEntries);
  const clock = options.clock ?? defaults.clock;
  const entries = new Map<string, Entry>();
  let closed = false;

  const now = () => clock.now().getTime();

  /** the live entry for `key`, refreshed as most recently used; expired entries are dropped */
  function touch(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (!entry) return undefined;
    entries.delete(key);
    if (entry.expiresAt <= now()) return undefined;
    entries.set(key, entry);
    return entry;
  }

  function store(key: string, entry: Entry): void {
    entries.delete(key);
    entries.set(key, entry);
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next().value as string;
      entries.delete(oldest);
    }
  }

  return {
    kind: 'memory',

    async get<T = unknown>(key: string): Promise<T | undefined> {
      if (closed) return undefined;
      const entry = touch(key);
      return entry ? (JSON.parse(entry.json) as T) : undefined;
    },

    async set(key, value, ttlSeconds) {
      if (closed) return;
      const json = JSON.stringify(value);
      // JSON has no `undefined`: caching it is the same as having nothing cached
      if (json === undefined) {
        entries.delete(key);
        return;
      }
      store(key, { json, expiresAt: now() + ttlMs(ttlSeconds) });
    },

    async del(...keys) {
      if (closed) return;
      for (const key of keys) entries.delete(key);
    },

    async deletePrefix(prefix) {
      if (!prefix) throw new TypeError('deletePrefix needs a non-empty prefix');
      if (closed) return undefined;
      let deleted = 0;
      const at = now();
      for (const [key, entry] of [...entries]) {
        if (!key.startsWith(prefix)) continue;
        entries.delete(key);
        if (entry.expiresAt > at) deleted += 1;
      }
      return deleted;
    },

    keys() {
      const at = now();
      return [...entries].filter(([, entry]) => entry.expiresAt > at).map(([key]) => key);
    },

    async incr(key, ttlSeconds) {
      if (closed) return undefined;
      const entry = touch(key);
      if (!entry) {
        store(key, { json: '1', expiresAt: now() + ttlMs(ttlSeconds) });
        return 1;
      }
      const current: unknown = JSON.parse(entry.json);
      // Redis refuses INCR on a value that is not an integer; this adapter answers "no count" too
      if (typeof current !== 'number' || !Number.isSafeInteger(current)) return undefined;
      entry.json = String(current + 1);
      return current + 1;
    },

    async healthy() {
      return !closed;
    },

    async close() {
      closed = true;
      entries.clear();
    },
  };
}

/** TTLs are whole milliseconds and at least one, as with Redis PX */
function ttlMs(ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000));
}
