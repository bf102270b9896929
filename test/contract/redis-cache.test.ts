import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisCache } from '../../shared/adapters/redis-cache/redis-cache.ts';
import { createRedisCache } from '../../shared/adapters/redis-cache/redis-cache.ts';
import { cacheContract } from './cache.ts';

const url = 'redis://127.0.0.1:6379';
const runPrefix = `ms:test:${randomUUID()}:`;
// behaviour, not latency, is under test here; a generous budget keeps a loaded 2-core machine from flaking
const commandTimeoutMs = 2_000;

let admin: Redis;

beforeAll(() => {
  admin = new Redis(url);
});

afterAll(async () => {
  await deleteKeys(runPrefix);
  await admin.quit();
});

async function deleteKeys(prefix: string): Promise<void> {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
}

/**
 * Lets time pass for every key under `prefix` by shortening its TTL, which is what waiting would
 * do, without waiting. Keys whose TTL runs out are deleted, as Redis would expire them.
 */
async function advanceTtls(prefix: string, ms: number): Promise<void> {
  for (const key of await admin.keys(`${prefix}*`)) {
    const remainingMs = await admin.pttl(key);
    if (remainingMs < 0) continue;
    if (remainingMs - ms <= 0) await admin.del(key);
    else await admin.pexpire(key, remainingMs - ms);
  }
}

cacheContract('redis', async () => {
  const prefix = `${runPrefix}${randomUUID()}:`;
  const cache = createRedisCache({ url, keyPrefix: prefix, commandTimeoutMs });
  const neighbour = createRedisCache({ url, keyPrefix: `${runPrefix}${randomUUID()}:`, commandTimeoutMs });
  return {
    cache,
    advanceTime: (ms) => advanceTtls(prefix, ms),
    openNeighbour: async () => neighbour,
    close: async () => {
      await Promise.all([cache.close(), neighbour.close()]);
    },
  };
});

describe('redis cache', () => {
  const opened: RedisCache[] = [];
  function open(): { cache: RedisCache; prefix: string } {
    const prefix = `${runPrefix}${randomUUID()}:`;
    const cache = createRedisCache({ url, keyPrefix: prefix, commandTimeoutMs });
    opened.push(cache);
    return { cache, prefix };
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((cache) => cache.close()));
  });

  it('stores values as JSON under the key prefix with the TTL as a Redis expiry', async () => {
    const { cache, prefix } = open();
    await cache.set('user:1', { name: 'Ada' }, 30);

    expect(await admin.get(`${prefix}user:1`)).toBe('{"name":"Ada"}');
    const ttlMs = await admin.pttl(`${prefix}user:1`);
    expect(ttlMs).toBeGreaterThan(25_000);
    expect(ttlMs).toBeLessThanOrEqual(30_000);
  });

  it('gives a new counter the TTL and leaves it unchanged on later increments', async () => {
    const { cache, prefix } = open();
    await cache.incr('window', 30);
    await admin.pexpire(`${prefix}window`, 12_345);

    await cache.incr('window', 30);
    await cache.incr('window', 30);

    expect(await admin.get(`${prefix}window`)).toBe('3');
    const ttlMs = await admin.pttl(`${prefix}window`);
    expect(ttlMs).toBeGreaterThan(10_000);
    expect(ttlMs).toBeLessThanOrEqual(12_345);
  });

  it('gives a counter that somehow lost its expiry a TTL again on the next increment', async () => {
    const { cache, prefix } = open();
    await admin.set(`${prefix}orphan`, '7');

    expect(await cache.incr('orphan', 30)).toBe(8);
    expect(await admin.pttl(`${prefix}orphan`)).toBeGreaterThan(25_000);
  });

  it('treats a value that is not JSON as a miss and keeps the breaker closed', async () => {
    const { cache, prefix } = open();
    await admin.set(`${prefix}foreign`, 'not json {', 'EX', 30);

    expect(await cache.get('foreign')).toBeUndefined();
    expect(cache.breakerState).toBe('closed');
  });

  it('does not count Redis error replies as outages', async () => {
    const { cache } = open();
    await cache.set('text', 'abc', 60);

    for (let attempt = 0; attempt < 10; attempt += 1) {
      expect(await cache.incr('text', 60)).toBeUndefined();
    }

    expect(cache.breakerState).toBe('closed');
    expect(await cache.healthy()).toBe(true);
  });

  it('answers undefined from deletePrefix when Redis cannot be reached, without throwing', async () => {
    const cache = createRedisCache({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 200, connectTimeoutMs: 200 });
    opened.push(cache);

    expect(await cache.deletePrefix('q:')).toBeUndefined();
  });
});
