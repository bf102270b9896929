import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalEmbedder } from '#shared/adapters/local-embedder/index.ts';
import type { Embedder } from '#shared/ports/embedder.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/** The local embedder, recording every text it is asked to embed. */
function recordingEmbedder(): Embedder & { seen: string[] } {
  const real = createLocalEmbedder();
  const e = { seen: [] as string[], model: real.model, dimension: real.dimension, warm: () => real.warm(), embed: async (texts: string[]) => {
    e.seen.push(...texts);
    return real.embed(texts);
  } };
  return e;
}

const QUERY_QUOTA = 50;

describe('POST /memory/query: what one query reads and writes', () => {
  let server: TestServer;
  let embedder: ReturnType<typeof recordingEmbedder>;
  let key: string;
  let tenantId: string;
  const db = () => server.app.db.kysely;
  const queriesCounted = async (tenant: string) => Number((await db().selectFrom('usage_counters').select('queries').where('tenant_id', '=', tenant).executeTakeFirst())?.queries ?? 0);

  beforeAll(async () => {
    embedder = recordingEmbedder();
    server = await startTestServer({ FREE_PLAN_MONTHLY_QUERIES: String(QUERY_QUOTA) }, { embedder });
    ({ apiKey: key, tenantId } = await server.newTenant());
  });
  afterAll(async () => {
    await server.stop();
  });

  it('writes one memory.query audit row, counts one query and touches last_accessed_at of what it returned', async () => {
    const add = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'ana'), body: { text: 'The spare bicycle key hangs behind the kitchen door.' } });
    const other = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'ana'), body: { text: 'Grandma prefers jasmine tea in the afternoon.' } });
    const untouched = await db().selectFrom('memories').select('last_accessed_at').where('id', '=', other.body.id).executeTakeFirstOrThrow();
    const before = await queriesCounted(tenantId);

    const res = await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'ana'), body: { query: 'where is the bicycle key?', k: 1 } });
    expect(res.status).toBe(200);
    expect(res.body.memories.map((m: { id: number }) => m.id)).toEqual([add.body.id]);

    const audit = await db().selectFrom('audit_logs').selectAll().where('request_id', '=', res.headers.get('x-request-id')!).execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ tenant_id: tenantId, event_type: 'memory.query', category: 'data', status: 'success', status_code: 200 });
    expect(await queriesCounted(tenantId)).toBe(before + 1);

    const touched = await db().selectFrom('memories').select('last_accessed_at').where('id', '=', add.body.id).executeTakeFirstOrThrow();
    expect(new Date(res.body.memories[0].last_accessed_at).getTime()).toBe(new Date(touched.last_accessed_at).getTime());
    expect(new Date(touched.last_accessed_at).getTime()).toBeGreaterThan(new Date(add.body.last_accessed_at).getTime());
    const stillUntouched = await db().selectFrom('memories').select('last_accessed_at').where('id', '=', other.body.id).executeTakeFirstOrThrow();
    expect(new Date(stillUntouched.last_accessed_at).getTime()).toBe(new Date(untouched.last_accessed_at).getTime());
  });

  it('writes the audit row through the middleware, and counts nothing, when the quota silently refuses the query', async () => {
    const t = await server.newTenant();
    await db().updateTable('tenants').set({ plan: 'free' }).where('id', '=', t.tenantId).execute();
    await server.app.usage.forgetPlan(t.tenantId);
    const period = new Date().toISOString().slice(0, 7);
    await db().insertInto('usage_counters').values({ tenant_id: t.tenantId, period, adds: 0, queries: QUERY_QUOTA })
      .onConflict((oc) => oc.columns(['tenant_id', 'period']).doUpdateSet({ queries: QUERY_QUOTA })).execute();
    const res = await server.call('POST', '/memory/query', { headers: keyHeaders(t.apiKey, 'ben'), body: { query: 'anything at all', k: 3 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ memories: [] });
    const audit = await db().selectFrom('audit_logs').selectAll().where('request_id', '=', res.headers.get('x-request-id')!).execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ event_type: 'memory.query', status: 'success' });
    expect(await queriesCounted(t.tenantId)).toBe(QUERY_QUOTA);
  });

  it('embeds a repeated query text once per tenant, even after a write invalidated the ranked results', async () => {
    const query = 'which tea does grandma like in the afternoon?';
    const embeddedQuery = () => embedder.seen.filter((t) => t === query).length;
    const ask = (apiKey: string) => server.call('POST', '/memory/query', { headers: keyHeaders(apiKey, 'ana'), body: { query, k: 3 } });
    const first = await ask(key);
    expect(first.status).toBe(200);
    expect(embeddedQuery()).toBe(1);
    await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'ana'), body: { text: 'The kettle in the office is broken again.' } });
    const again = await ask(key);
    expect(again.status).toBe(200);
    expect(again.body.memories[0].id).toBe(first.body.memories[0].id);
    expect(embeddedQuery()).toBe(1);
    // another tenant asking the same words is embedded for itself (no cross-tenant cache hits to time)
    const other = await server.newTenant();
    expect((await ask(other.apiKey)).status).toBe(200);
    expect(embeddedQuery()).toBe(2);
  });
});
