import { Redis, ReplyError } from 'ioredis';
import type { Cache } from '../../ports/cache.ts';
import type { Clock } from '../../ports/clock.ts';
import { systemClock } from '../../ports/clock.ts';
import type { BreakerState, CircuitBreakerOptions } from './circuit-breaker.ts';
import { CircuitBreaker } from './circuit-breaker.ts';

export interface RedisCacheOptions {
  /** redis:// or rediss:// (TLS) URL */
  url: string;
  /** prepended to every key so several deployments or test runs can share one Redis */
  keyPrefix?: string;
  /** budget for one cache call; past it the call counts as a failure and answers a miss */
  commandTimeoutMs?: number;
  /** extra budget for calls made before the very first connection is ready (cold start) */
  connectTimeoutMs?: number;
  breaker?: Omit<CircuitBreakerOptions, 'clock'>;
  clock?: Clock;
}

const defaults = {
  keyPrefix: 'ms:',
  commandTimeoutMs: 150,
  connectTimeoutMs: 1_000,
  breaker: { failureThreshold: 5, coolDownMs: 5_000 },
  /** reconnect backoff never grows past this, and never gives up: the breaker decides when to try */
  maxReconnectDelayMs: 1_000,
  /** an answer from Redis younger than this makes healthy() skip its PING */
  healthMaxAnswerAgeMs: 1_000,
  /** SCAN COUNT hint for deletePrefix; each step (one SCAN, one UNLINK of what it found) gets the command budget */
  scanBatch: 500,
} as const;

export interface RedisCacheStats {
  /** calls let through the breaker towards Redis */
  attempted: number;
  /** calls answered by the open breaker without touching the network */
  shortCircuited: number;
}

export interface RedisCache extends Cache {
  readonly breakerState: BreakerState;
  stats(): RedisCacheStats;
}

/**
 * Cache over Redis (ElastiCache or any Redis). Losing Redis must only slow requests down, so no
 * call ever throws for connectivity: the client fails fast (no offline queue, no retries, short
 * timeouts) and a circuit breaker stops touching the network after repeated failures.
 */
export function createRedisCache(options: RedisCacheOptions): RedisCache {
  const commandTimeoutMs = options.commandTimeoutMs ?? defaults.commandTimeoutMs;
  const connectTimeoutMs = options.connectTimeoutMs ?? defaults.connectTimeoutMs;
  const clock = options.clock ?? systemClock;
  const breaker = new CircuitBreaker({ ...defaults.breaker, ...options.breaker, clock });

  const keyPrefix = options.keyPrefix ?? defaults.keyPrefix;
  const client = new Redis(options.url, {
    keyPrefix,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), defaults.maxReconnectDelayMs),
  });
  // Without a listener ioredis dumps every connection error to stderr (a bare EventEmitter would
  // crash the process); failures reach callers only as misses, counted by the breaker.
  client.on('error', () => {});

  let everReady = false;
  const firstReady = new Promise<void>((resolve) => client.once('ready', resolve)).then(() => {
    everReady = true;
  });

  let closed = false;
  let lastAnsweredAt = Number.NEGATIVE_INFINITY;
  const stats: RedisCacheStats = { attempted: 0, shortCircuited: 0 };

  /**
   * Resolves once a command can be written. Only the first connection of a cold start is worth
   * waiting for; once a connection has failed or dropped, calls fail fast until ioredis reconnects.
   */
  function connected(): Promise<void> {
    const status = client.status;
    if (status === 'ready') return Promise.resolve();
    const firstConnectionUnderWay = !everReady && (status === 'connecting' || status === 'connect');
    return firstConnectionUnderWay ? firstReady : Promise.reject(new Error(`redis not connected (${status})`));
  }

  function answered(): void {
    breaker.recordSuccess();
    lastAnsweredAt = clock.now().getTime();
  }

  /**
   * Runs one cache call through the breaker. Connectivity failures and timeouts count against
   * the breaker and answer `fallback`; a Redis error reply proves the server is up, so it does not.
   */
  async function run<T>(call: () => Promise<T>, fallback: T): Promise<T> {
    if (closed) return fallback;
    if (!breaker.tryAcquire()) {
      stats.shortCircuited += 1;
      return fallback;
    }
    stats.attempted += 1;
    const budgetMs = everReady ? commandTimeoutMs : connectTimeoutMs + commandTimeoutMs;
    try {
      const value = await withDeadline(connected().then(call), budgetMs);
      answered();
      return value;
    } catch (error) {
      if (error instanceof ReplyError) answered();
      else breaker.recordFailure();
      return fallback;
    }
  }

  async function del(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await run(async () => {
      await client.del(...keys);
    }, undefined);
  }

  return {
    kind: 'redis',

    get breakerState() {
      return breaker.state;
    },

    stats: () => ({ ...stats }),

    get<T = unknown>(key: string) {
      return run(async () => {
        const json = await client.get(key);
        return json === null ? undefined : parseJson<T>(json);
      }, undefined);
    },

    async set(key, value, ttlSeconds) {
      const json = JSON.stringify(value);
      // JSON has no `undefined`: caching it is the same as having nothing cached
      if (json === undefined) return del(key);
      await run(async () => {
        await client.set(key, json, 'PX', ttlMs(ttlSeconds));
      }, undefined);
    },

    del,

    async deletePrefix(prefix) {
      if (!prefix) throw new TypeError('deletePrefix needs a non-empty prefix');
      // ioredis prefixes key arguments but not SCAN patterns: match on the full key, unlink by the
      // unprefixed name. SCAN walks the whole keyspace of this (single-node) Redis in small steps,
      // so a large keyspace never blocks the server; every step is its own call through the breaker.
      const pattern = `${escapeGlob(keyPrefix + prefix)}*`;
      let cursor = '0';
      let deleted = 0;
      do {
        const step = await run(async () => {
          const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', defaults.scanBatch);
          const removed = keys.length ? await client.unlink(...keys.map((k) => k.slice(keyPrefix.length))) : 0;
          return { next, removed };
        }, undefined);
        if (!step) return undefined; // unavailable part-way: what is left expires with its TTL
        deleted += step.removed;
        cursor = step.next;
      } while (cursor !== '0');
      return deleted;
    },

    incr(key, ttlSeconds) {
      return run(async () => {
        // MULTI keeps INCR and the window's expiry atomic; NX sets the TTL only when the counter
        // has none yet, so increments never extend the window (Redis ≥ 7.0).
        const replies = await client.multi().incr(key).pexpire(key, ttlMs(ttlSeconds), 'NX').exec();
        const [incrError, count] = replies?.[0] ?? [new Error('transaction aborted'), undefined];
        return incrError || typeof count !== 'number' ? undefined : count;
      }, undefined);
    },

    async healthy() {
      if (closed) return false;
      // an open breaker answers false without a round trip until its cool-down lets a probe through
      const answerAgeMs = clock.now().getTime() - lastAnsweredAt;
      if (breaker.state === 'closed' && answerAgeMs < defaults.healthMaxAnswerAgeMs) return true;
      return run(async () => {
        await client.ping();
        return true;
      }, false);
    },

    async close() {
      if (closed) return;
      closed = true;
      if (client.status === 'ready') {
        await withDeadline(client.quit(), connectTimeoutMs).catch(() => undefined);
      }
      client.disconnect();
    },
  };
}

/** A literal for a Redis glob pattern (SCAN MATCH): `*`, `?`, `[`, `]` and `\` escaped. */
function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function parseJson<T>(json: string): T | undefined {
  try {
    return JSON.parse(json) as T;
  } catch {
    // written by something other than this adapter: treat as a miss rather than fail the caller
    return undefined;
  }
}

/** TTLs are whole milliseconds and at least one (PX/PEXPIRE reject zero) */
function ttlMs(ttlSeconds: number): number {
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis call exceeded ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
