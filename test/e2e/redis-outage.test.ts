import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { freePort, killProcess, startRedis } from '../support/redis-server.ts';

const killRedis = (child: ChildProcess | undefined) => killProcess(child);

/** Keys the API keeps in this Redis (principals, projects, query results, rate-limit windows). */
async function keysIn(port: number): Promise<string[]> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await probe.connect();
    return await probe.keys('*');
  } finally {
    probe.disconnect();
  }
}

describe('API during a Redis outage', () => {
  let port: number;
  let redis: ChildProcess | undefined;
  let server: TestServer;
  let key: string;
  const user = 'outage-user';
  const h = () => keyHeaders(key, user);
  let before: { id: number };

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMITS_ENABLED: 'true' });
    ({ apiKey: key } = await server.newTenant('Outage tenant'));
  });
  afterAll(async () => {
    await server?.stop();
    await killRedis(redis);
  });

  it('uses Redis while it is up', async () => {
    const health = await server.call('GET', '/health');
    expect(health.body).toMatchObject({ status: 'ok', checks: { cache: 'ok' } });
    const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'Before the outage I planted tomatoes in the garden.' } });
    expect(add.status).toBe(201);
    before = add.body;
    const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what did I plant in the garden?', k: 3 } });
    expect(q.status).toBe(200);
    expect(q.body.memories[0].id).toBe(before.id);
    expect(q.headers.get('x-ratelimit-limit')).not.toBeNull();
    const keys = await keysIn(port);
    expect(keys.some((k) => k.includes('principal:key:'))).toBe(true);
    expect(keys.some((k) => k.includes(':q:') || k.startsWith('ms:q:'))).toBe(true);
  });

  describe('after Redis is killed', () => {
    beforeAll(async () => {
      await killRedis(redis);
      redis = undefined;
    });

    it('still adds, queries, gets, lists, updates and deletes with correct data', async () => {
      const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'During the outage I adopted a grey cat named Pixel.', tags: ['pets'] } });
      expect(add.status).toBe(201);
      expect(add.body).toMatchObject({ text: 'During the outage I adopted a grey cat named Pixel.', embedding_status: 'ready' });
      const dup = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'During the outage I adopted a grey cat named Pixel.' } });
      expect(dup.body).toMatchObject({ status: 'skipped', existing_id: add.body.id });

      const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what is my kitten called?', k: 3 } });
      expect(q.status).toBe(200);
      expect(q.body.memories[0]).toMatchObject({ id: add.body.id, text: add.body.text });
      expect(q.body.degraded).toBe(false);
      // fails open: no rate-limit headers without the counter store, and no refusal either
      expect(q.headers.get('x-ratelimit-limit')).toBeNull();
      const old = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what did I plant in the garden?', k: 1 } });
      expect(old.body.memories[0].id).toBe(before.id);

      const get = await server.call('GET', `/memory/${add.body.id}`, { headers: h() });
      expect(get.status).toBe(200);
      expect(get.body.text).toBe(add.body.text);
      const list = await server.call('GET', `/v1/memory/default/${user}/list?limit=0`, { headers: { 'X-API-Key': key } });
      expect(list.status).toBe(200);
      expect(list.body.memories.map((m: any) => m.raw_text)).toEqual([add.body.text, 'Before the outage I planted tomatoes in the garden.']);

      const bulk = await server.call('POST', '/memory/bulk-add', { headers: h(), body: { items: [{ text: 'Bulk memory written while Redis is down.' }] } });
      expect(bulk.status).toBe(207);
      expect(bulk.body.created).toBe(1);
      const patched = await server.call('PATCH', `/memory/${add.body.id}`, { headers: h(), body: { tags: ['pets', 'cat'] } });
      expect(patched.status).toBe(200);
      expect(patched.body.tags).toEqual(['pets', 'cat']);
      const del = await server.call('DELETE', `/memory/${bulk.body.results[0].memory_ids[0]}`, { headers: h() });
      expect(del.status).toBe(200);
      const exported = await server.call('GET', '/memory/export', { headers: h() });
      expect(exported.body.memories.map((m: any) => m.id)).toEqual([before.id, add.body.id]);
      // a query after the write sees the write (no stale cached result)
      const fresh = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what is my kitten called?', k: 3, filters: { tags: ['cat'] } } });
      expect(fresh.body.memories.map((m: any) => m.id)).toEqual([add.body.id]);
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(200);
    });

    it('still authenticates keys it has never seen and refuses bad ones', async () => {
      const { apiKey } = await server.newTenant('Tenant created during the outage');
      const res = await server.call('POST', '/memory/add', { headers: keyHeaders(apiKey, 'someone'), body: { text: 'A brand new tenant writes during the outage.' } });
      expect(res.status).toBe(201);
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': 'ms_live_notarealkey000000' } })).status).toBe(401);
    });

    it('reports the cache as degraded on /health', async () => {
      const health = await server.call('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'degraded', checks: { database: 'ok', cache: 'degraded' } });
    });
  });

  describe('after Redis comes back', () => {
    beforeAll(async () => {
      redis = await startRedis(port);
    });

    it('keeps serving, and uses Redis again once the breaker lets it', async () => {
      const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'After the outage I repainted the fence white.' } });
      expect(add.status).toBe(201);
      const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what colour is the fence?', k: 1 } });
      expect(q.body.memories[0].id).toBe(add.body.id);
      // the circuit breaker probes again after its cool-down; poll the condition, not a clock
      await vi.waitFor(
        async () => {
          const health = await server.call('GET', '/health');
          expect(health.body.checks.cache).toBe('ok');
        },
        { timeout: 30_000, interval: 250 },
      );
      const again = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'what colour is the fence?', k: 1 } });
      expect(again.status).toBe(200);
      expect(again.body.memories[0].id).toBe(add.body.id);
      expect((await keysIn(port)).some((k) => k.includes('principal:key:'))).toBe(true);
    });
  });
});
