import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import type { LocalQueue } from '#shared/adapters/local-queue/index.ts';
import { keyHeaders, startTestServer, tableCounts, type TestServer } from '../support/server.ts';
import { bearer, keyWithScopes, sessionWithRole } from '../support/recall-helpers.ts';

const db = (server: TestServer) => server.app.db.kysely;
const endUserId = (server: TestServer, tenantId: string, external: string) => server.app.identity.resolveEndUser(tenantId, external);

describe('recall features over HTTP', () => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  let otherKey: string;
  const add = async (user: string, body: Record<string, unknown>, k = key) => {
    const res = await server.call('POST', '/memory/add', { headers: keyHeaders(k, user), body });
    expect(res.status).toBe(201);
    return res.body.id as number;
  };

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key, tenantId } = await server.newTenant('recall'));
    ({ apiKey: otherKey } = await server.newTenant('other'));
  });
  afterAll(() => server.stop());

  describe('POST /memory/summarize', () => {
    it('summarizes the chosen memories and stores a summary memory linked to them', async () => {
      const u = 'sum-user';
      const a = await add(u, { text: 'We moved the launch of project Falcon to March. The launch needs a security review first.', tags: ['falcon'] });
      const b = await add(u, { text: 'The Falcon security review is booked with the platform team for February.', tags: ['falcon', 'security'], importance: 0.8 });
      const res = await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, u), body: { memory_ids: [a, `m_${b}`], max_sentences: 2 } });
      expect(res.status).toBe(200);
      expect(res.body.memory_ids).toEqual([a, b]);
      expect(res.body.summary).toMatch(/Falcon/);
      expect(res.body.summary.split(/(?<=[.!?])\s+/).length).toBeLessThanOrEqual(2);
      expect(res.body.summary_memory).toMatchObject({ is_summary: true, memory_type: 'summary', source: 'summarizer', importance: 0.8, metadata: { summary_of: [a, b] } });
      const links = await db(server).selectFrom('memory_links').selectAll().where('from_memory_id', '=', res.body.summary_memory_id).orderBy('to_memory_id').execute();
      expect(links.map((l) => [Number(l.to_memory_id), l.kind])).toEqual([[a, 'summarizes'], [b, 'summarizes']]);
      // Summaries are not recalled unless asked for.
      const plain = await server.call('POST', '/memory/query', { headers: keyHeaders(key, u), body: { query: 'Falcon launch security review', k: 5 } });
      expect(plain.body.memories.map((m: any) => m.id)).not.toContain(res.body.summary_memory_id);
      const withSummaries = await server.call('POST', '/memory/query', { headers: keyHeaders(key, u), body: { query: 'Falcon launch security review', k: 5, filters: { include_summaries: true } } });
      expect(withSummaries.body.memories.map((m: any) => m.id)).toContain(res.body.summary_memory_id);
    });

    it('does not summarize another end user\'s or another tenant\'s memories (404), and rejects bad input without writing', async () => {
      const mine = await add('sum-owner', { text: 'Only the owner may summarize this memory.' });
      expect((await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, 'sum-intruder'), body: { memory_ids: [mine] } })).status).toBe(404);
      expect((await server.call('POST', '/memory/summarize', { headers: keyHeaders(otherKey, 'sum-owner'), body: { memory_ids: [mine] } })).status).toBe(404);
      const before = await tableCounts(server);
      const bad = await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, 'sum-owner'), body: { memory_ids: [] } });
      expect(bad.status).toBe(422);
      expect(bad.body.error.code).toBe('VALIDATION_ERROR');
      const tooMany = await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, 'sum-owner'), body: { memory_ids: Array.from({ length: 51 }, (_, i) => i + 1) } });
      expect(tooMany.status).toBe(422);
      const after = await tableCounts(server);
      expect({ ...after, users: 0 }).toEqual({ ...before, users: 0 });
    });

    it('needs credentials (401) and the memories:write scope (403)', async () => {
      expect((await server.call('POST', '/memory/summarize', { headers: { 'X-End-User-ID': 'x' }, body: { memory_ids: [1] } })).status).toBe(401);
      const readOnly = await keyWithScopes(server, tenantId, ['memories:read']);
      const res = await server.call('POST', '/memory/summarize', { headers: keyHeaders(readOnly, 'x'), body: { memory_ids: [1] } });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('INSUFFICIENT_SCOPE');
    });
  });

  describe('POST /memory/compose', () => {
    const u = 'compose-user';
    const enc = new Tiktoken(cl100k);
    beforeAll(async () => {
      await add(u, { text: 'I am allergic to peanuts and tree nuts, so restaurants must know before I order.' });
      await add(u, { text: 'My favourite cuisine is Japanese, especially sushi and ramen in winter.' });
      await add(u, { text: 'The quarterly budget review with finance happens every March and September.' });
    });

    it('adds memories in score order and counts tokens of the whole prompt with cl100k_base', async () => {
      const res = await server.call('POST', '/memory/compose', { headers: keyHeaders(key, u), body: { query: 'what food should the restaurant avoid serving me?', k: 3 } });
      expect(res.status).toBe(200);
      expect(res.body.token_budget).toBe(1000);
      expect(res.body.tokenizer).toBe('cl100k_base');
      expect(res.body.memories).toHaveLength(3);
      expect(res.body.memories[0].text).toContain('peanuts');
      const scores = res.body.memories.map((m: any) => m.score);
      expect([...scores].sort((x: number, y: number) => y - x)).toEqual(scores);
      expect(res.body.tokens_used).toBe(enc.encode(res.body.prompt).length);
      expect(res.body.memories[0].tokens).toBe(enc.encode(`- ${res.body.memories[0].text}`).length);
      expect(res.body.prompt).toContain('User: what food should the restaurant avoid serving me?');
    });

    it('stops adding memories at the token budget (max_tokens alias) and honours a template', async () => {
      const template = 'Facts:\n{memories}\nQ: {query}';
      const empty = enc.encode(template.replace('{memories}', '(none)').replace('{query}', 'food allergies')).length;
      const first = enc.encode('Facts:\n- I am allergic to peanuts and tree nuts, so restaurants must know before I order.\nQ: food allergies').length;
      const res = await server.call('POST', '/memory/compose', { headers: keyHeaders(key, u), body: { query: 'food allergies', max_tokens: first + 3, template, k: 3 } });
      expect(res.status).toBe(200);
      expect(first + 3).toBeGreaterThan(empty);
      expect(res.body.memories.map((m: any) => m.text)).toEqual(['I am allergic to peanuts and tree nuts, so restaurants must know before I order.']);
      expect(res.body.tokens_used).toBe(first);
      expect(res.body.tokens_used).toBeLessThanOrEqual(res.body.token_budget);
      expect(res.body.prompt.startsWith('Facts:\n- I am allergic')).toBe(true);
    });

    it('rejects a budget smaller than the template itself, and a template without {memories}', async () => {
      const tiny = await server.call('POST', '/memory/compose', { headers: keyHeaders(key, u), body: { query: 'food', token_budget: 3 } });
      expect(tiny.status).toBe(422);
      expect(tiny.body.error.message).toMatch(/token_budget/);
      const noSlot = await server.call('POST', '/memory/compose', { headers: keyHeaders(key, u), body: { query: 'food', template: 'just {query}' } });
      expect(noSlot.status).toBe(422);
      expect((await server.call('POST', '/memory/compose', { body: { query: 'food' } })).status).toBe(401);
    });

    it('composes nothing from another tenant\'s memories', async () => {
      const res = await server.call('POST', '/memory/compose', { headers: keyHeaders(otherKey, u), body: { query: 'food allergies' } });
      expect(res.status).toBe(200);
      expect(res.body.memories).toEqual([]);
    });
  });

  describe('POST /memory/search/routed', () => {
    const u = 'routed-user';
    let tagged: number;
    let phrase: number;
    let newest: number;
    beforeAll(async () => {
      tagged = await add(u, { text: 'Passport renewal appointment at the consulate.', tags: ['travel'] });
      phrase = await add(u, { text: 'Always book a window seat on long flights, never the aisle.' });
      newest = await add(u, { text: 'Bought a new espresso grinder for the office kitchen.' });
    });

    it('routes #tags to tag search, quoted phrases to lexical, "latest" to recency and the rest to semantic', async () => {
      const call = (body: unknown) => server.call('POST', '/memory/search/routed', { headers: keyHeaders(key, u), body });
      const tag = await call({ query: '#travel' });
      expect(tag.body).toMatchObject({ route: 'tag', tags: ['travel'] });
      expect(tag.body.results.map((r: any) => r.id)).toEqual([tagged]);
      const lexical = await call({ query: 'find "window seat"' });
      expect(lexical.body.route).toBe('lexical');
      expect(lexical.body.results.map((r: any) => r.id)).toEqual([phrase]);
      const noMatch = await call({ query: '"window aisle seat"' });
      expect(noMatch.body.results).toEqual([]);
      const recent = await call({ query: 'show my latest notes', k: 2 });
      expect(recent.body.route).toBe('recency');
      expect(recent.body.results.map((r: any) => r.id)).toEqual([newest, phrase]);
      const semantic = await call({ query: 'coffee equipment purchase', k: 1 });
      expect(semantic.body.route).toBe('semantic');
      expect(semantic.body.results[0].id).toBe(newest);
      expect(semantic.body.results[0].score).toBeGreaterThan(0);
      const byFilter = await call({ filters: { tags: ['travel'] } });
      expect(byFilter.body.route).toBe('tag');
    });

    it('rejects a body with neither query nor tags (422) and answers other tenants with nothing', async () => {
      const bad = await server.call('POST', '/memory/search/routed', { headers: keyHeaders(key, u), body: {} });
      expect(bad.status).toBe(422);
      const other = await server.call('POST', '/memory/search/routed', { headers: keyHeaders(otherKey, u), body: { query: '#travel' } });
      expect(other.body.results).toEqual([]);
    });
  });

  describe('derived views', () => {
    const u = 'views-user';
    let car1: number;
    let car2: number;
    let decision: number;
    beforeAll(async () => {
      car1 = await add(u, { text: 'I bought a new car last week, a red Toyota Corolla.', tags: ['cars'], source: 'chat' });
      car2 = await add(u, { text: 'The car dealership offered a good price on the Toyota sedan.', tags: ['cars'], source: 'chat' });
      await add(u, { text: 'My favourite food is salmon sushi with ginger.', tags: ['food'], source: 'n8n' });
      decision = await add(u, { text: 'We decided to use PostgreSQL for the billing service.', tags: ['work'] });
    });

    it('graph: memories as nodes, an edge between the two similar ones found through the vector store', async () => {
      const res = await server.call('GET', '/memory/graph?threshold=0.4', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body.nodes).toHaveLength(4);
      const similar = res.body.edges.filter((e: any) => e.kind === 'similar');
      expect(similar).toEqual([expect.objectContaining({ source: Math.min(car1, car2), target: Math.max(car1, car2) })]);
      expect(similar[0].weight).toBeGreaterThanOrEqual(0.4);
      expect(res.body.bounds).toMatchObject({ computed_on_read: true, memories_considered: 4, max_memories: 100 });
      expect((await server.call('GET', '/memory/graph?limit=501', { headers: keyHeaders(key, u) })).status).toBe(422);
    });

    it('clusters: the two car memories together, labelled by their words', async () => {
      const res = await server.call('GET', '/memory/clusters?threshold=0.4', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body.clusters).toHaveLength(1);
      expect([...res.body.clusters[0].memory_ids].sort()).toEqual([car1, car2].sort());
      expect(res.body.clusters[0].label).toMatch(/toyota|car/);
      expect(res.body.unclustered).toHaveLength(2);
    });

    it('decisions: only memories classified as decisions, paginated', async () => {
      const res = await server.call('GET', '/memory/decisions', { headers: keyHeaders(key, u) });
      expect(res.body).toMatchObject({ total: 1, limit: 50, offset: 0 });
      expect(res.body.items.map((m: any) => m.id)).toEqual([decision]);
    });

    it('intelligence: counts by type, tier and source, top tags and weekly activity', async () => {
      const res = await server.call('GET', '/memory/intelligence', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(4);
      expect(res.body.by_source).toMatchObject({ chat: 2, n8n: 1, unknown: 1 });
      expect(res.body.by_tier).toEqual({ hot: 4 });
      expect(res.body.decisions).toBe(1);
      expect(res.body.top_tags[0]).toEqual({ tag: 'cars', count: 2 });
      expect(res.body.activity_by_week.reduce((n: number, w: any) => n + w.count, 0)).toBe(4);
      expect(res.body.top_keywords.map((k: any) => k.word)).toContain('toyota');
    });

    it('views of another tenant or end user are empty; no credentials is 401', async () => {
      const other = await server.call('GET', '/memory/graph', { headers: keyHeaders(otherKey, u) });
      expect(other.body.nodes).toEqual([]);
      const stranger = await server.call('GET', '/memory/intelligence', { headers: keyHeaders(key, 'nobody') });
      expect(stranger.body.total).toBe(0);
      expect((await server.call('GET', '/memory/clusters', {})).status).toBe(401);
    });
  });

  describe('maintenance', () => {
    it('refresh queues re-embedding through the outbox; the embedding worker marks the memories ready again', async () => {
      const u = 'refresh-user';
      await add(u, { text: 'First memory to re-embed on refresh.' });
      await add(u, { text: 'Second memory to re-embed on refresh.' });
      const uid = await endUserId(server, tenantId, u);
      await db(server).updateTable('memories').set({ last_accessed_at: new Date(Date.now() - 40 * 86_400_000) }).where('user_id', '=', uid).where('tenant_id', '=', tenantId).execute();
      const res = await server.call('POST', '/memory/refresh', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ queued: 2, tasks: 1, tiers_changed: 2 });
      const rows = await db(server).selectFrom('memories').select(['tier', 'embedding_status']).where('user_id', '=', uid).execute();
      expect(rows.every((r) => r.tier === 'warm' && r.embedding_status === 'pending')).toBe(true);
      await (server.app.queue as LocalQueue).runUntilIdle();
      const after = await db(server).selectFrom('memories').select('embedding_status').where('user_id', '=', uid).execute();
      expect(after.map((r) => r.embedding_status)).toEqual(['ready', 'ready']);
    });

    it('purge hard-deletes soft-deleted and expired memories and their vectors, keeping the rest', async () => {
      const u = 'purge-user';
      const keep = await add(u, { text: 'This memory stays after the purge.' });
      const soft = await add(u, { text: 'This memory is soft-deleted, then purged.' });
      const expired = await add(u, { text: 'This memory expires and is purged.', ttl_minutes: 1 });
      await server.call('POST', `/api/v1/memories/${soft}/soft-delete`, { headers: keyHeaders(key, u) });
      await db(server).updateTable('memories').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', expired).execute();
      const res = await server.call('POST', '/memory/purge', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ purged: 2, soft_deleted: 1, expired: 1 });
      expect([...res.body.memory_ids].sort()).toEqual([soft, expired].sort());
      const uid = await endUserId(server, tenantId, u);
      expect(await server.app.vectors.listIds(`memorysync-user-${uid}`)).toEqual([keep]);
      const left = await db(server).selectFrom('memories').select('id').where('user_id', '=', uid).execute();
      expect(left.map((r) => Number(r.id))).toEqual([keep]);
    });

    it('user purge deletes every row, event, link, refusal, vector and cache entry of the end user only', async () => {
      const u = 'gone-user';
      const a = await add(u, { text: 'Gone user memory number one.' });
      await add(u, { text: 'Gone user memory number two, about the same topic.' });
      await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, u), body: { memory_ids: [a] } });
      await server.call('POST', '/memory/add', { headers: keyHeaders(key, u), body: { text: 'my key AKIAIOSFODNN7EXAMPLE' } });
      const bystander = await add('bystander', { text: 'A bystander keeps this memory.' });
      const uid = await endUserId(server, tenantId, u);
      const res = await server.call('DELETE', '/memory/user/purge', { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ end_user_id: u, deleted: { memories: 3, memory_events: 3, memory_links: 1, refusals: 1, vectors: 3, cache_keys: 1 }, vectors_pending: false });
      expect(await db(server).selectFrom('memories').select('id').where('user_id', '=', uid).execute()).toEqual([]);
      expect(await db(server).selectFrom('refusals').select('id').where('user_id', '=', uid).execute()).toEqual([]);
      expect(await server.app.vectors.count(`memorysync-user-${uid}`)).toBe(0);
      expect((await server.call('GET', `/memory/${bystander}`, { headers: keyHeaders(key, 'bystander') })).status).toBe(200);
      const audit = await db(server).selectFrom('audit_logs').select(['event_type', 'payload_json']).where('event_type', '=', 'memory.user_purge').execute();
      expect(audit).toHaveLength(1);
      expect(JSON.stringify(audit[0].payload_json)).not.toContain('Gone user');
    });

    it('user purge needs an admin session (403 for a member) and touches nothing in another tenant', async () => {
      const member = await sessionWithRole(server, tenantId, 'member');
      const res = await server.call('DELETE', '/memory/user/purge', { headers: bearer(member) });
      expect(res.status).toBe(403);
      const admin = await sessionWithRole(server, tenantId, 'admin');
      expect((await server.call('DELETE', '/memory/user/purge', { headers: bearer(admin) })).status).toBe(200);
      const victim = await add('victim', { text: 'Another tenant cannot purge this memory.' });
      const cross = await server.call('DELETE', '/memory/user/purge', { headers: keyHeaders(otherKey, 'victim') });
      expect(cross.body.deleted.memories).toBe(0);
      expect((await server.call('GET', `/memory/${victim}`, { headers: keyHeaders(key, 'victim') })).status).toBe(200);
    });
  });

  describe('refusals on the write path', () => {
    it('refuses secrets and contentless text with 422 CONTENT_REFUSED, storing nothing and logging no text', async () => {
      const u = 'refused-user';
      const before = await tableCounts(server);
      const secret = 'my card is 4111 1111 1111 1111, keep it';
      const res = await server.call('POST', '/memory/add', { headers: keyHeaders(key, u), body: { text: secret } });
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'CONTENT_REFUSED', reason: 'payment_card' });
      const dots = await server.call('POST', '/memory/add', { headers: keyHeaders(key, u), body: { text: '.... ---- !!!!' } });
      expect(dots.body.error).toMatchObject({ code: 'CONTENT_REFUSED', reason: 'no_content' });
      const after = await tableCounts(server);
      expect({ ...after, users: 0 }).toEqual({ ...before, users: 0 });
      const logged = await db(server).selectFrom('refusals').selectAll().where('end_user_id', '=', u).orderBy('id').execute();
      expect(logged.map((r) => r.reason)).toEqual(['payment_card', 'no_content']);
      expect(JSON.stringify(logged)).not.toContain('4111');
      expect(logged[0]).toMatchObject({ channel: 'memory.create', content_length: secret.length });
      const bulk = await server.call('POST', '/memory/bulk-add', { headers: keyHeaders(key, u), body: { items: [{ text: 'A perfectly ordinary memory to keep.' }, { text: 'token ms_live_abcdefghijklmnopqrstu' }] } });
      expect(bulk.body.results.map((r: any) => [r.status, r.reason])).toEqual([['created', null], ['rejected', 'content_refused: memorysync_api_key']]);
    });
  });
});

describe('memory.queried webhook events', () => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  const queriedTasks = async () => (await server.app.db.kysely.selectFrom('outbox').select('payload').where('type', '=', 'fanout').where('tenant_id', '=', tenantId).execute())
    .filter((r) => (r.payload as { event?: string }).event === 'memory.queried');

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key, tenantId } = await server.newTenant('webhooks'));
    await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'wh-user'), body: { text: 'A memory for the queried webhook test.' } });
  });
  afterAll(() => server.stop());

  it('writes no outbox row per query until the tenant subscribes a webhook to memory.queried', async () => {
    await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'wh-user'), body: { query: 'queried webhook' } });
    expect(await queriedTasks()).toEqual([]);
    await server.app.db.kysely.insertInto('webhooks').values({ id: 'wh_test_queried', tenant_id: tenantId, project_id: null, name: 'queries', url: 'https://example.test/hook', description: null, events: JSON.stringify(['memory.queried']), secret_ciphertext: new Uint8Array([1]), auth_header_name: null, auth_header_value_ciphertext: null, created_by: null }).execute();
    await server.app.cache.del(`whsub:${tenantId}:-:memory.queried`);
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(key, 'wh-user'), body: { query: 'queried webhook' } });
    const tasks = await queriedTasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0].payload).toMatchObject({ event: 'memory.queried', endUserId: 'wh-user', data: { memory_ids: q.body.memories.map((m: any) => m.id), count: 1 } });
  });
});
