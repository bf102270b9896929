import type { ChildProcess } from 'node:child_process';
import { freePort, killProcess, startRedis as startRedisServer } from '../support/redis-server.ts';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RedisCache } from '../../shared/adapters/redis-cache/redis-cache.ts';
import { createRedisCache } from '../../shared/adapters/redis-cache/redis-cache.ts';
import { createManualClock } from '../contract/cache.ts';

const servers = new Set<ChildProcess>();
const caches = new Set<RedisCache>();

/** starts a throwaway redis-server, tracked so afterEach always kills it */
async function startRedis(port: number): Promise<ChildProcess> {
  const server = await startRedisServer(port);
  servers.add(server);
  return server;
}

async function killRedis(server: ChildProcess): Promise<void> {
  await killProcess(server);
  servers.delete(server);
}

function openCache(port: number, overrides: Partial<Parameters<typeof createRedisCache>[0]> = {}): RedisCache {
  const cache = createRedisCache({
    url: `redis://127.0.0.1:${port}`,
    keyPrefix: `ms:outage:${randomUUID()}:`,
    commandTimeoutMs: 200,
    breaker: { failureThreshold: 3, coolDownMs: 10_000 },
    ...overrides,
  });
  caches.add(cache);
  return cache;
}

/** ioredis reports an 'error' event nobody listens to on console.error; that must never happen */
function unhandledRedisErrorEvents(consoleError: { mock: { calls: unknown[][] } }): unknown[][] {
  return consoleError.mock.calls.filter((args) => String(args[0]).includes('Unhandled error event'));
}

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all([...caches].map((cache) => cache.close()));
  caches.clear();
  await Promise.all([...servers].map((server) => killRedis(server)));
});

describe('redis cache during a Redis outage', () => {
  it('answers misses, opens the breaker, stops touching the network, and recovers after the cool-down', async () => {
    const consoleError = vi.spyOn(console, 'error');
    const port = await freePort();
    let server = await startRedis(port);
    const clock = createManualClock();
    const cache = openCache(port, { clock });
    await cache.set('greeting', { hello: 'world' }, 60);
    expect(await cache.get('greeting')).toEqual({ hello: 'world' });
    expect(await cache.healthy()).toBe(true);

    await killRedis(server);

    expect(await cache.get('greeting')).toBeUndefined();
    await expect(cache.set('other', 1, 60)).resolves.toBeUndefined();
    expect(await cache.incr('counter', 60)).toBeUndefined();
    expect(cache.breakerState).toBe('open');

    const beforeShortCircuit = cache.stats();
    for (let call = 0; call < 10; call += 1) {
      expect(await cache.get('greeting')).toBeUndefined();
      await cache.set('greeting', 'ignored', 60);
      expect(await cache.incr('counter', 60)).toBeUndefined();
      await cache.del('greeting');
    }
    expect(await cache.healthy()).toBe(false);
    expect(cache.stats()).toEqual({
      attempted: beforeShortCircuit.attempted,
      shortCircuited: beforeShortCircuit.shortCircuited + 41,
    });

    // after the cool-down exactly one probe goes out, however many calls arrive together
    clock.advance(10_000);
    const beforeProbe = cache.stats();
    const answers = await Promise.all(Array.from({ length: 5 }, () => cache.get('greeting')));
    expect(answers).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(cache.stats().attempted).toBe(beforeProbe.attempted + 1);
    expect(cache.breakerState).toBe('open');

    server = await startRedis(port);

    // ioredis reconnects on its own backoff; each poll lets one cool-down pass and probes once
    await vi.waitFor(
      async () => {
        clock.advance(10_000);
        await cache.set('greeting', { hello: 'again' }, 60);
        expect(cache.breakerState).toBe('closed');
      },
      { timeout: 20_000, interval: 50 },
    );
    expect(await cache.get('greeting')).toEqual({ hello: 'again' });
    expect(await cache.incr('counter', 60)).toBe(1);
    expect(await cache.healthy()).toBe(true);
    expect(unhandledRedisErrorEvents(consoleError)).toEqual([]);
  });

  it('answers misses without throwing when Redis is down from the start', async () => {
    const consoleError = vi.spyOn(console, 'error');
    const port = await freePort();
    const cache = openCache(port, { connectTimeoutMs: 100, commandTimeoutMs: 100 });

    expect(await cache.get('anything')).toBeUndefined();
    await expect(cache.set('anything', { a: 1 }, 60)).resolves.toBeUndefined();
    expect(await cache.incr('anything', 60)).toBeUndefined();
    expect(await cache.healthy()).toBe(false);
    expect(cache.breakerState).toBe('open');
    expect(unhandledRedisErrorEvents(consoleError)).toEqual([]);
  });
});
