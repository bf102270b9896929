import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signupOwner, type Account } from '../support/accounts.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

const ADDS = 5;
const QUERIES = 5;

/**
 * Monthly quotas as API.md 1.9 describes them: exhaustion is silent by default (200/201 with nothing
 * done), strict mode answers 429 `limit_exceeded`, and webhooks hear about 80 % and 100 % once.
 */
describe('monthly quota over HTTP', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ FREE_PLAN_MONTHLY_ADDS: String(ADDS), FREE_PLAN_MONTHLY_QUERIES: String(QUERIES), PRO_PLAN_MONTHLY_ADDS: '1000' });
  });
  afterAll(() => server.stop());

  async function ownerWithKey(label: string): Promise<{ owner: Account; key: string }> {
    const owner = await signupOwner(server, label);
    const key = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'quota' } });
    return { owner, key: key.body.key };
  }

  const memoriesOf = async (tenantId: string) =>
    Number((await server.app.db.kysely.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow()).n);

  const thresholdEvents = async (tenantId: string) =>
    (await server.app.db.kysely.selectFrom('outbox').select('payload').where('tenant_id', '=', tenantId).where('family', '=', 'webhook-delivery').orderBy('id').execute())
      .map((r) => r.payload as { event: string; data: Record<string, unknown> })
      .filter((p) => p.event === 'billing.usage_threshold')
      .map((p) => `${p.data.counter}:${p.data.threshold_percent}`);

  it('silently skips adds past the limit: 200 {"status":"ok"}, nothing stored, usage not counted', async () => {
    const { owner, key } = await ownerWithKey('silent-adds');
    for (let i = 0; i < ADDS; i++) {
      const res = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'quota-user'), body: { text: `Quota memory number ${i} is long enough.` } });
      expect(res.status).toBe(201);
    }
    const over = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'quota-user'), body: { text: 'This memory arrives after the monthly limit.' } });
    expect(over.status).toBe(200);
    expect(over.body).toEqual({ status: 'ok' });
    expect(await memoriesOf(owner.tenantId)).toBe(ADDS);
    const turn = await server.call('POST', '/v1/memory/add_turn', { headers: keyHeaders(key), body: { tenant_id: owner.tenantId, user_id: 'quota-user', text: 'human: a turn after the limit is skipped' } });
    expect(turn.status).toBe(201);
    expect(turn.body).toMatchObject({ memory_id: null, status: 'ok', processing_status: 'skipped', already_exists: false });
    expect(await memoriesOf(owner.tenantId)).toBe(ADDS);
    const usage = await server.call('GET', '/org/billing/usage', { headers: bearer(owner.token) });
    expect(usage.body).toMatchObject({ adds_used: ADDS, adds_limit: ADDS });
  });

  it('silently empties queries past the limit: query {"memories":[]}, recall context "", v1 query {"memories":[]}', async () => {
    const { owner, key } = await ownerWithKey('silent-queries');
    await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'q-user'), body: { text: 'The office wifi password is written on the fridge.' } });
    for (let i = 0; i < QUERIES; i++) {
      const res = await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'q-user'), body: { query: 'wifi password' } });
      expect(res.body.memories.length).toBe(1);
    }
    const query = await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'q-user'), body: { query: 'wifi password' } });
    expect(query.status).toBe(200);
    expect(query.body).toEqual({ memories: [] });
    const recall = await server.call('POST', '/v1/memory/recall', { headers: keyHeaders(key), body: { tenant_id: owner.tenantId, user_id: 'q-user', prompt: 'wifi password' } });
    expect(recall.status).toBe(200);
    expect(recall.body).toMatchObject({ context: '', memories: [] });
    const v1 = await server.call('POST', '/v1/memory/query', { headers: keyHeaders(key), body: { tenant_id: owner.tenantId, user_id: 'q-user', prompt: 'wifi password' } });
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ memories: [] });
    expect((await server.call('GET', '/org/billing', { headers: bearer(owner.token) })).body.queries_used).toBe(QUERIES);
  });

  it('answers 429 limit_exceeded in strict mode, and a bigger plan lifts the limit at once', async () => {
    const { owner, key } = await ownerWithKey('strict');
    expect((await server.call('PATCH', '/org/billing', { headers: bearer(owner.token), body: { quota_mode: 'strict' } })).status).toBe(200);
    for (let i = 0; i < ADDS; i++) await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'strict-user'), body: { text: `Strict quota memory ${i} is long enough.` } });
    const over = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'strict-user'), body: { text: 'Strict mode refuses this memory.' } });
    expect(over.status).toBe(429);
    expect(over.body.detail).toMatchObject({ error: 'limit_exceeded' });
    expect(over.body.detail.message).toMatch(/monthly limit/);
    expect(await memoriesOf(owner.tenantId)).toBe(ADDS);
    expect((await server.call('PATCH', '/org/billing', { headers: bearer(owner.token), body: { plan: 'pro' } })).status).toBe(200);
    const after = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'strict-user'), body: { text: 'The pro plan accepts this memory.' } });
    expect(after.status).toBe(201);
    const billing = await server.call('GET', '/org/billing', { headers: bearer(owner.token) });
    expect(billing.body).toMatchObject({ plan: 'pro', adds_used: ADDS + 1, adds_limit: 1000 });
  });

  it('queues billing.usage_threshold at 80 % and at 100 % of a limit, once per period each', async () => {
    const { owner, key } = await ownerWithKey('thresholds');
    const add = (i: number) => server.call('POST', '/memory/add', { headers: keyHeaders(key, 't-user'), body: { text: `Threshold memory number ${i} is long enough.` } });
    for (let i = 0; i < 3; i++) await add(i);
    expect(await thresholdEvents(owner.tenantId)).toEqual([]);
    await add(3); // 4 of 5 = 80 %
    expect(await thresholdEvents(owner.tenantId)).toEqual(['adds:80']);
    await add(4); // 5 of 5 = 100 %
    await add(5); // skipped silently: not counted, no second notice
    await add(6);
    expect(await thresholdEvents(owner.tenantId)).toEqual(['adds:80', 'adds:100']);
    const billing = await server.call('GET', '/org/billing', { headers: bearer(owner.token) });
    expect(billing.body.thresholds_notified.map((t: any) => `${t.counter}:${t.threshold_percent}`)).toEqual(['adds:80', 'adds:100']);
    const event = (await server.app.db.kysely.selectFrom('outbox').select('payload').where('tenant_id', '=', owner.tenantId).where('family', '=', 'webhook-delivery').execute())
      .map((r) => r.payload as { event: string; data: Record<string, unknown> })
      .find((p) => p.event === 'billing.usage_threshold' && p.data.threshold_percent === 100);
    expect(event?.data).toMatchObject({ counter: 'adds', used: 5, limit: 5 });
  });

  it('counts quotas per tenant: one tenant at its limit does not limit another', async () => {
    const a = await ownerWithKey('tenant-a');
    const b = await ownerWithKey('tenant-b');
    for (let i = 0; i < ADDS; i++) await server.call('POST', '/memory/add', { headers: keyHeaders(a.key, 'u'), body: { text: `Tenant A memory ${i} is long enough.` } });
    expect((await server.call('POST', '/memory/add', { headers: keyHeaders(a.key, 'u'), body: { text: 'Tenant A is over its limit now.' } })).body).toEqual({ status: 'ok' });
    expect((await server.call('POST', '/memory/add', { headers: keyHeaders(b.key, 'u'), body: { text: 'Tenant B still has its full quota.' } })).status).toBe(201);
  });
});
