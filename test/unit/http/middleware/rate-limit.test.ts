import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '#shared/adapters/memory-cache/memory-cache.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { rateLimit } from '#shared/http/middleware/rate-limit.ts';
import type { Cache } from '#shared/ports/cache.ts';
import type { Clock } from '#shared/ports/clock.ts';
import { RateLimiter } from '#shared/services/rate-limiter.ts';
import type { Principal } from '#shared/services/scope.ts';
import { apiEvent } from '../../../support/events.ts';
import { apiKeyPrincipal, bodyJson, given, handlerWith, silentLogger } from '../middy-harness.ts';

/** Time stands still until a test moves it. */
function manualClock(start = '2026-03-02T10:00:00.250Z') {
  let now = new Date(start).getTime();
  const clock: Clock = { now: () => new Date(now) };
  return { clock, advance: (ms: number) => { now += ms; } };
}

function setup(opts: { principal?: Principal; enabled?: boolean; cache?: Cache } = {}) {
  const { clock, advance } = manualClock();
  const cache = opts.cache ?? createMemoryCache({ clock });
  const limiter = new RateLimiter(cache, clock);
  const api = handlerWith([given({ principal: opts.principal }), rateLimit({ limiter, enabled: opts.enabled ?? true }), errorHandler({ logger: silentLogger() })]);
  return { api, advance, cache };
}

const query = (sourceIp = '198.51.100.7') => apiEvent({ method: 'POST', path: '/memory/query', headers: { 'X-End-User-ID': 'alice' }, body: { query: 'favourite food' }, sourceIp });
const free = apiKeyPrincipal({ apiKeyId: 501, rateLimitTier: 'free' });

describe('rate limit middleware', () => {
  it('refuses the third request in the same second for a free-tier key with 429 RATE_LIMIT_EXCEEDED', async () => {
    const { api } = setup({ principal: free });
    expect((await api(query())).statusCode).toBe(200);
    expect((await api(query())).statusCode).toBe(200);
    const third = await api(query());
    expect(third.statusCode).toBe(429);
    expect(third.headers?.['Retry-After']).toBe('1');
    expect(bodyJson(third).error).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', retry_after: 1 });
    expect(bodyJson(third).error.message).toMatch(/per-second/);
    expect(third.headers).toMatchObject({ 'X-RateLimit-Limit': '2', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '1' });
  });

  it('admits the key again when the next second starts', async () => {
    const { api, advance } = setup({ principal: free });
    for (let i = 0; i < 3; i++) await api(query());
    advance(1000);
    expect((await api(query())).statusCode).toBe(200);
  });

  it('counts each key separately', async () => {
    const { clock } = manualClock();
    const limiter = new RateLimiter(createMemoryCache({ clock }), clock);
    const as = (p: Principal) => handlerWith([given({ principal: p }), rateLimit({ limiter, enabled: true }), errorHandler({ logger: silentLogger() })]);
    for (let i = 0; i < 2; i++) expect((await as(free)(query())).statusCode).toBe(200);
    expect((await as(apiKeyPrincipal({ apiKeyId: 502, rateLimitTier: 'free' }))(query())).statusCode).toBe(200);
    expect((await as(free)(query())).statusCode).toBe(429);
  });

  it('stamps X-RateLimit-Limit, -Remaining and -Reset of the tightest window on admitted requests', async () => {
    const { api } = setup({ principal: apiKeyPrincipal({ rateLimitTier: 'pro' }) });
    const first = await api(query());
    expect(first.headers).toMatchObject({ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '9', 'X-RateLimit-Reset': '1' });
    const second = await api(query());
    expect(second.headers?.['X-RateLimit-Remaining']).toBe('8');
  });

  it('limits anonymous callers per source IP on the anonymous tier', async () => {
    const { api } = setup();
    for (let i = 0; i < 10; i++) expect((await api(query('198.51.100.7'))).statusCode).toBe(200);
    expect((await api(query('198.51.100.7'))).statusCode).toBe(429);
    expect((await api(query('198.51.100.8'))).statusCode).toBe(200);
  });

  it('fails open without headers when the cache cannot count', async () => {
    const memory = createMemoryCache();
    const unavailable: Cache = { ...memory, kind: 'unavailable', incr: async () => undefined, healthy: async () => false };
    const { api } = setup({ principal: free, cache: unavailable });
    for (let i = 0; i < 5; i++) {
      const res = await api(query());
      expect(res.statusCode).toBe(200);
      expect(res.headers).not.toHaveProperty('X-RateLimit-Limit');
    }
  });

  it('neither counts nor stamps headers when disabled', async () => {
    const memory = createMemoryCache();
    let increments = 0;
    const counting: Cache = { ...memory, incr: (key, ttl) => { increments += 1; return memory.incr(key, ttl); } };
    const { api } = setup({ principal: free, enabled: false, cache: counting });
    for (let i = 0; i < 5; i++) {
      const res = await api(query());
      expect(res.statusCode).toBe(200);
      expect(res.headers).not.toHaveProperty('X-RateLimit-Limit');
    }
    expect(increments).toBe(0);
  });
});
