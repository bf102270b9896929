import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { freshSchema } from '../support/pg-schema.ts';

/** The same suite on the embedded default and on the machine's PostgreSQL + Redis. */
const targets: Array<[string, () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>]> = [
  ['embedded PGlite + pgvector, in-process cache', async () => ({ env: {}, cleanup: async () => {} })],
  ['PostgreSQL server + Redis', async () => {
    const schema = await freshSchema('e2e');
    return { env: { DATABASE_URL: schema.url, REDIS_URL: 'redis://127.0.0.1:6379' }, cleanup: schema.drop };
  }],
];

describe.each(targets)('memory API over HTTP (%s)', (_name, target) => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  let cleanup: () => Promise<void>;
  const user = 'alice';
  const h = () => keyHeaders(key, user);

  beforeAll(async () => {
    const t = await target();
    cleanup = t.cleanup;
    server = await startTestServer(t.env);
    ({ apiKey: key, tenantId } = await server.newTenant());
  });
  afterAll(async () => {
    await server.stop();
    await cleanup();
  });

  it('answers /health without credentials', async () => {
    const res = await server.call('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('stores a memory (201, integer id, fields echoed) and recalls a paraphrase of it first', async () => {
    const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'I bought a new car last week, a red Toyota Corolla.', tags: ['cars'], source: 'typescript-sdk', importance: 0.9, metadata: { k: 'v' } } });
    expect(add.status).toBe(201);
    expect(Number.isInteger(add.body.id)).toBe(true);
    expect(add.body).toMatchObject({ text: 'I bought a new car last week, a red Toyota Corolla.', tags: ['cars'], source: 'typescript-sdk', importance: 0.9, metadata: { k: 'v' }, user_id: user, embedding_status: 'ready' });
    await server.call('POST', '/memory/add', { headers: h(), body: { text: 'My favourite food is salmon sushi with ginger.' } });
    await server.call('POST', '/memory/add', { headers: h(), body: { text: 'The dentist appointment moved to Thursday morning.' } });
    const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'which automobile did I purchase?', k: 3 } });
    expect(q.status).toBe(200);
    expect(q.body.memories[0].id).toBe(add.body.id);
    expect(q.body.memories[0].score).toBeGreaterThan(q.body.memories[1].score);
    expect(q.body.context).toContain('Toyota');
  });

  it('accepts content as an alias of text and the limit alias of k', async () => {
    const add = await server.call('POST', '/memory/add', { headers: h(), body: { content: 'Alias content field is normalised into text.' } });
    expect(add.status).toBe(201);
    expect(add.body.text).toBe('Alias content field is normalised into text.');
    const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'alias content', limit: 1 } });
    expect(q.body.memories).toHaveLength(1);
  });

  it('deduplicates the same text per end user and reports the existing id', async () => {
    const text = 'Deduplicated memory text that is long enough.';
    const first = await server.call('POST', '/memory/add', { headers: h(), body: { text } });
    const again = await server.call('POST', '/memory/add', { headers: h(), body: { text: `  ${text.toUpperCase()} ` } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ status: 'skipped', reason: 'duplicate', existing_id: first.body.id });
    const other = await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'bob'), body: { text } });
    expect(other.status).toBe(201);
    const forced = await server.call('POST', '/memory/add', { headers: h(), body: { text, deduplicate: false } });
    expect(forced.status).toBe(201);
  });

  it('gets, patches (re-embedding new text) and deletes one memory', async () => {
    const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'Project Falcon ships in March.' } });
    const id = add.body.id;
    expect((await server.call('GET', `/memory/${id}`, { headers: h() })).body.text).toBe('Project Falcon ships in March.');
    const patched = await server.call('PATCH', `/memory/${id}`, { headers: h(), body: { text: 'Project Falcon ships in September instead.', tags: ['roadmap'] } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, text: 'Project Falcon ships in September instead.', tags: ['roadmap'], embedding_status: 'ready' });
    expect(new Date(patched.body.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(add.body.updated_at).getTime());
    const q = await server.call('POST', '/memory/query', { headers: h(), body: { query: 'when does Falcon ship', k: 1, filters: { tags: ['roadmap'] } } });
    expect(q.body.memories[0].text).toContain('September');
    const del = await server.call('DELETE', `/memory/${id}`, { headers: h() });
    expect(del.body).toEqual({ deleted: true, id });
    expect((await server.call('GET', `/memory/${id}`, { headers: h() })).status).toBe(404);
    expect((await server.call('DELETE', `/memory/${id}`, { headers: h() })).status).toBe(404);
    expect(await server.app.vectors.listIds(`memorysync-user-${(await server.app.identity.resolveEndUser(tenantId, user))}`)).not.toContain(id);
  });

  it('forgets ids given as integers, m_ strings and digit strings, skipping ids it does not own', async () => {
    const ids: number[] = [];
    for (const t of ['Forget me number one please.', 'Forget me number two please.', 'Forget me number three please.']) {
      ids.push((await server.call('POST', '/memory/add', { headers: h(), body: { text: t } })).body.id);
    }
    const bobs = (await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'bob'), body: { text: 'Bob keeps this memory safe.' } })).body.id;
    const res = await server.call('DELETE', '/memory/forget', { headers: h(), body: { memory_ids: [ids[0], `m_${ids[1]}`, String(ids[2]), bobs] } });
    expect(res.status).toBe(200);
    expect(res.body.deleted_ids.sort()).toEqual([...ids].sort());
    expect(res.body.deleted_count).toBe(3);
    expect((await server.call('GET', `/memory/${bobs}`, { headers: keyHeaders(key, 'bob') })).status).toBe(200);
  });

  it('filters by tags, source, event_type and date range', async () => {
    const eu = 'filter-user';
    const hh = keyHeaders(key, eu);
    await server.call('POST', '/memory/add', { headers: hh, body: { text: 'Meeting notes about the budget review.', tags: ['work'], source: 'n8n', event_type: 'meeting' } });
    await server.call('POST', '/memory/add', { headers: hh, body: { text: 'Grocery list: apples, budget friendly pasta.', tags: ['home'], source: 'dify' } });
    const byTag = await server.call('POST', '/memory/query', { headers: hh, body: { query: 'budget', k: 5, filters: { tags: ['home'] } } });
    expect(byTag.body.memories.map((m: any) => m.source)).toEqual(['dify']);
    const bySource = await server.call('POST', '/memory/query', { headers: hh, body: { query: 'budget', k: 5, filters: { sources: ['n8n'] } } });
    expect(bySource.body.memories.map((m: any) => m.tags)).toEqual([['work']]);
    const byEvent = await server.call('POST', '/memory/query', { headers: hh, body: { query: 'budget', k: 5, filters: { event_type: 'meeting' } } });
    expect(byEvent.body.memories).toHaveLength(1);
    const future = await server.call('POST', '/memory/query', { headers: hh, body: { query: 'budget', k: 5, filters: { since: '2999-01-01T00:00:00Z' } } });
    expect(future.body.memories).toEqual([]);
    const bad = await server.call('POST', '/memory/query', { headers: hh, body: { query: 'budget', filters: { since: '2025-02-01', until: '2025-01-01' } } });
    expect(bad.status).toBe(422);
  });

  it('excludes memories past their ttl from query and list', async () => {
    const eu = 'ttl-user';
    const add = await server.call('POST', '/memory/add', { headers: keyHeaders(key, eu), body: { text: 'This memory expires after one minute.', ttl_minutes: 1 } });
    expect(add.status).toBe(201);
    expect(new Date(add.body.expires_at).getTime() - new Date(add.body.created_at).getTime()).toBe(60_000);
    await server.app.db.kysely.updateTable('memories').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', add.body.id).execute();
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(key, eu), body: { query: 'memory expires', k: 5 } });
    expect(q.body.memories).toEqual([]);
  });

  it('bulk-adds up to 50 items with per-item created/skipped/rejected results in input order', async () => {
    const eu = 'bulk-user';
    const items = [
      { text: 'Bulk item one is long enough to store.' },
      { text: 'short' },
      { text: 'Bulk item one is long enough to store.' },
      { text: 'Bulk item four has tags attached.', tags: ['x'] },
      { nope: true },
    ];
    const res = await server.call('POST', '/memory/bulk-add', { headers: keyHeaders(key, eu), body: { items } });
    expect(res.status).toBe(207);
    expect(res.body).toMatchObject({ total: 5, created: 2, skipped: 1, rejected: 2 });
    expect(res.body.results.map((r: any) => [r.index, r.status])).toEqual([[0, 'created'], [1, 'rejected'], [2, 'skipped'], [3, 'created'], [4, 'rejected']]);
    const again = await server.call('POST', '/memory/bulk-add', { headers: keyHeaders(key, eu), body: { items: [items[0]] } });
    expect(again.body.results[0]).toMatchObject({ status: 'skipped', memory_ids: [res.body.results[0].memory_ids[0]] });
  });

  it('exports every memory of the end user', async () => {
    const eu = 'export-user';
    await server.call('POST', '/memory/add', { headers: keyHeaders(key, eu), body: { text: 'Exported memory number one.' } });
    await server.call('POST', '/memory/add', { headers: keyHeaders(key, eu), body: { text: 'Exported memory number two.' } });
    const res = await server.call('GET', '/memory/export', { headers: keyHeaders(key, eu) });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe(eu);
    expect(res.body.memories.map((m: any) => m.text)).toEqual(['Exported memory number one.', 'Exported memory number two.']);
    expect((await server.call('GET', '/memory/export', { headers: { 'X-API-Key': key } })).body.error.code).toBe('MISSING_END_USER_ID');
  });

  it('requires X-End-User-ID for API-key callers, or takes end_user_id from the body', async () => {
    const missing = await server.call('POST', '/memory/add', { headers: { 'X-API-Key': key }, body: { text: 'No end user for this memory.' } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('MISSING_END_USER_ID');
    expect(missing.body.request_id).toBe(missing.headers.get('x-request-id'));
    const viaBody = await server.call('POST', '/memory/add', { headers: { 'X-API-Key': key }, body: { text: 'End user given in the body.', end_user_id: 'body-user' } });
    expect(viaBody.status).toBe(201);
    expect(viaBody.body.user_id).toBe('body-user');
  });

  it('answers the n8n credential test', async () => {
    const res = await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'n8n-connection-test'), body: { query: 'connection test', k: 1 } });
    expect(res.status).toBe(200);
    expect(res.body.memories).toEqual([]);
  });

  it('accepts the same key in both Authorization: Bearer and X-API-Key, and a bare Bearer key', async () => {
    const both = await server.call('POST', '/memory/query', { headers: { ...keyHeaders(key, user), Authorization: `Bearer ${key}` }, body: { query: 'car' } });
    expect(both.status).toBe(200);
    const bearerOnly = await server.call('POST', '/memory/query', { headers: { Authorization: `Bearer ${key}`, 'X-End-User-ID': user }, body: { query: 'car' } });
    expect(bearerOnly.status).toBe(200);
  });

  describe('v1 data plane', () => {
    const v1user = 'v1-user';

    it('add_turn stores verbatim turns with role inference and replays idempotently', async () => {
      const turn = { tenant_id: 'default', user_id: v1user, text: 'human: I prefer window seats on long flights', source: 'n8n', speaker: 'human@n8n::sess#h0123456789abcdef', metadata: { session_id: 'n8n::default' } };
      const first = await server.call('POST', '/v1/memory/add_turn', { headers: { 'X-API-Key': key }, body: turn });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ status: 'stored', processing_status: 'completed', already_exists: false, role: 'user' });
      expect(first.body.memory_id).toMatch(/^m_\d+$/);
      const replay = await server.call('POST', '/v1/memory/add_turn', { headers: { 'X-API-Key': key }, body: turn });
      expect(replay.body).toMatchObject({ memory_id: first.body.memory_id, already_exists: true, processing_status: 'skipped_replay' });
      const ai = await server.call('POST', '/v1/memory/add_turn', { headers: { 'X-API-Key': key }, body: { tenant_id: tenantId, user_id: v1user, text: 'ai: Noted, window seats it is.' } });
      expect(ai.body.role).toBe('assistant');
      const list = await server.call('GET', `/v1/memory/default/${v1user}/list?limit=10`, { headers: { 'X-API-Key': key } });
      expect(list.status).toBe(200);
      expect(list.body.total).toBe(2);
      expect(list.body.memories[0].raw_text).toBe('Noted, window seats it is.');
      expect(list.body.memories[1].metadata).toMatchObject({ metadata: { session_id: 'n8n::default' }, speaker: turn.speaker, source: 'n8n', episodic: true });
    });

    it('rejects a blank turn with the detail clients read', async () => {
      const res = await server.call('POST', '/v1/memory/add_turn', { headers: { 'X-API-Key': key }, body: { tenant_id: 'default', user_id: v1user, text: '   ' } });
      expect(res.status).toBe(422);
      expect(res.body.detail).toContain("'text' must be a non-empty string");
    });

    it('query and recall return m_ ids, raw_text and a bullet context', async () => {
      const q = await server.call('POST', '/v1/memory/query', { headers: { 'X-API-Key': key }, body: { tenant_id: 'default', user_id: v1user, prompt: 'seat preference on planes' } });
      expect(q.status).toBe(200);
      expect(q.body.memories[0]).toMatchObject({ raw_text: 'I prefer window seats on long flights' });
      expect(q.body.memories[0].memory_id).toMatch(/^m_\d+$/);
      const r = await server.call('POST', '/v1/memory/recall', { headers: { 'X-API-Key': key }, body: { tenant_id: tenantId, user_id: v1user, prompt: 'seat preference on planes', k: 1 } });
      expect(r.body.context).toBe('- I prefer window seats on long flights');
      expect(r.body.used_fallback).toBe(false);
    });

    it('sees memories added through /memory/add with the same end user id', async () => {
      await server.call('POST', '/memory/add', { headers: keyHeaders(key, v1user), body: { text: 'Shared view between both planes.' } });
      const list = await server.call('GET', `/v1/memory/${tenantId}/${v1user}/list?limit=0`, { headers: { 'X-API-Key': key } });
      expect(list.body.memories.map((m: any) => m.raw_text)).toContain('Shared view between both planes.');
      expect(list.body.total).toBe(list.body.memories.length);
    });
  });
});

describe('CORS preflight through the whole chain', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('answers OPTIONS on a known route with 204, the CORS allow headers, X-Request-ID and security headers, without credentials', async () => {
    const res = await fetch(`${server.url}/memory/add`, { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toContain('X-API-Key');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe('');
  });

  it('answers OPTIONS on an unknown path with the 404 envelope', async () => {
    const res = await fetch(`${server.url}/nope`, { method: 'OPTIONS' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
