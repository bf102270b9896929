import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, tableCounts, type TestServer } from '../support/server.ts';
import { bearer, keyWithScopes, sessionWithRole } from '../support/recall-helpers.ts';

describe('/api/v1 lifecycle, explainability and refusals over HTTP', () => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  let otherKey: string;
  const db = () => server.app.db.kysely;
  const add = async (user: string, body: Record<string, unknown>) => {
    const res = await server.call('POST', '/memory/add', { headers: keyHeaders(key, user), body });
    expect(res.status).toBe(201);
    return res.body.id as number;
  };
  const vectorStatus = async (user: string, id: number) => {
    const uid = await server.app.identity.resolveEndUser(tenantId, user);
    const row = await db().selectFrom('memory_vectors' as never).select(['retention_status' as never]).where('namespace' as never, '=', `memorysync-user-${uid}` as never).where('memory_id' as never, '=', id as never).executeTakeFirst();
    return (row as { retention_status?: string } | undefined)?.retention_status;
  };
  const ids = (res: { body: any }) => res.body.memories.map((m: any) => m.id);

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key, tenantId } = await server.newTenant('lifecycle'));
    ({ apiKey: otherKey } = await server.newTenant('other'));
  });
  afterAll(() => server.stop());

  describe('archive, soft-delete, restore', () => {
    const u = 'life-user';

    it('archives: readable by id, no longer searchable, vector metadata archived; restore brings it back', async () => {
      const id = await add(u, { text: 'The staging database password rotates every ninety days.' });
      const archived = await server.call('POST', `/api/v1/memories/${id}/archive`, { headers: keyHeaders(key, u) });
      expect(archived.status).toBe(200);
      expect(archived.body).toMatchObject({ id, from: 'active', to: 'archived', retention_status: 'archived', restorable: true, searchable: false });
      expect(archived.body.timestamps.archive_at).toBeTruthy();
      expect(new Date(archived.body.timestamps.retention_expires_at).getTime() - new Date(archived.body.timestamps.archive_at).getTime()).toBe(60 * 86_400_000);
      expect((await server.call('GET', `/memory/${id}`, { headers: keyHeaders(key, u) })).body.retention_status).toBe('archived');
      expect(ids(await server.call('POST', '/memory/query', { headers: keyHeaders(key, u), body: { query: 'database password rotation' } }))).not.toContain(id);
      expect(await vectorStatus(u, id)).toBe('archived');
      expect((await server.call('POST', `/api/v1/memories/${id}/archive`, { headers: keyHeaders(key, u) })).status).toBe(409);

      const restored = await server.call('POST', `/api/v1/memories/${id}/restore`, { headers: keyHeaders(key, u) });
      expect(restored.body).toMatchObject({ from: 'archived', to: 'active', searchable: true });
      expect(await vectorStatus(u, id)).toBe('active');
      expect(ids(await server.call('POST', '/memory/query', { headers: keyHeaders(key, u), body: { query: 'database password rotation' } }))).toContain(id);
    });

    it('soft-deletes (hidden from GET and query), restores within the grace period, refuses after it', async () => {
      const text = 'Soft deleted memories can come back within a week.';
      const id = await add(u, { text });
      const soft = await server.call('POST', `/api/v1/memories/${id}/soft-delete`, { headers: keyHeaders(key, u) });
      expect(soft.body).toMatchObject({ to: 'soft_deleted', restorable: true });
      expect(new Date(soft.body.restore_deadline).getTime() - new Date(soft.body.timestamps.deleted_at).getTime()).toBe(7 * 86_400_000);
      expect((await server.call('GET', `/memory/${id}`, { headers: keyHeaders(key, u) })).status).toBe(404);
      expect(await vectorStatus(u, id)).toBe('soft_deleted');
      // The same text may be stored again while the original waits in the bin; restore then keeps both.
      const again = await server.call('POST', '/memory/add', { headers: keyHeaders(key, u), body: { text } });
      expect(again.status).toBe(201);
      const restored = await server.call('POST', `/api/v1/memories/${id}/restore`, { headers: keyHeaders(key, u) });
      expect(restored.body).toMatchObject({ to: 'active', timestamps: { deleted_at: null, hard_delete_at: null } });
      expect((await server.call('GET', `/memory/${id}`, { headers: keyHeaders(key, u) })).status).toBe(200);

      const late = await add(u, { text: 'This one stays in the bin past its grace period.' });
      await server.call('POST', `/api/v1/memories/${late}/soft-delete`, { headers: keyHeaders(key, u) });
      await db().updateTable('memories').set({ hard_delete_at: new Date(Date.now() - 1000) }).where('id', '=', late).execute();
      const tooLate = await server.call('POST', `/api/v1/memories/${late}/restore`, { headers: keyHeaders(key, u) });
      expect(tooLate.status).toBe(409);
      expect(tooLate.body.error.code).toBe('RESTORE_GRACE_EXPIRED');
    });

    it('records every transition in memory_events and shows the history', async () => {
      const id = await add(u, { text: 'A memory with a long and eventful history.' });
      for (const step of ['archive', 'restore', 'soft-delete', 'restore']) {
        expect((await server.call('POST', `/api/v1/memories/${id}/${step}`, { headers: keyHeaders(key, u) })).status).toBe(200);
      }
      const res = await server.call('GET', `/api/v1/memories/${id}/lifecycle`, { headers: keyHeaders(key, u) });
      expect(res.status).toBe(200);
      expect(res.body.history.map((h: any) => h.event)).toEqual(['created', 'archived', 'restored', 'soft_deleted', 'restored']);
      expect(res.body.history[3].data).toMatchObject({ from: 'active', to: 'soft_deleted' });
      const audit = await db().selectFrom('audit_logs').select('event_type').where('resource_id', '=', String(id)).where('tenant_id', '=', tenantId).orderBy('id').execute();
      expect(audit.map((a) => a.event_type)).toEqual(['memory.create', 'memory.archived', 'memory.restored', 'memory.soft_deleted', 'memory.restored']);
    });

    it('answers 404 for another end user or tenant, 401 without credentials, 403 for a viewer or a read-only key, 422 for a bad id', async () => {
      const id = await add(u, { text: 'Nobody else may archive this memory.' });
      expect((await server.call('POST', `/api/v1/memories/${id}/archive`, { headers: keyHeaders(key, 'someone-else') })).status).toBe(404);
      expect((await server.call('POST', `/api/v1/memories/${id}/archive`, { headers: keyHeaders(otherKey, u) })).status).toBe(404);
      expect((await server.call('GET', `/api/v1/memories/${id}/lifecycle`, { headers: keyHeaders(otherKey, u) })).status).toBe(404);
      expect((await server.call('POST', `/api/v1/memories/${id}/archive`, {})).status).toBe(401);
      const viewer = await sessionWithRole(server, tenantId, 'viewer');
      expect((await server.call('POST', `/api/v1/memories/${id}/archive`, { headers: bearer(viewer) })).status).toBe(403);
      const readOnly = await keyWithScopes(server, tenantId, ['memories:read']);
      expect((await server.call('POST', `/api/v1/memories/${id}/soft-delete`, { headers: keyHeaders(readOnly, u) })).status).toBe(403);
      const before = await tableCounts(server);
      expect((await server.call('POST', '/api/v1/memories/abc/archive', { headers: keyHeaders(key, u) })).status).toBe(422);
      expect(await tableCounts(server)).toEqual(before);
      expect((await server.call('GET', `/memory/${id}`, { headers: keyHeaders(key, u) })).body.retention_status).toBe('active');
    });
  });

  describe('POST /api/v1/explain', () => {
    const u = 'explain-user';
    let car: number;
    let food: number;

    beforeAll(async () => {
      car = await add(u, { text: 'I bought a new car last week, a red Toyota Corolla.', importance: 0.9 });
      food = await add(u, { text: 'My favourite food is salmon sushi with ginger.' });
    });

    it('gives the same final score as /memory/query, with its semantic, lexical, recency and importance parts', async () => {
      const query = 'which Toyota car did I buy';
      const q = await server.call('POST', '/memory/query', { headers: keyHeaders(key, u), body: { query, k: 2 } });
      const res = await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { query, memory_id: car } });
      expect(res.status).toBe(200);
      const s = res.body.score;
      expect(s.final).toBeCloseTo(q.body.memories.find((m: any) => m.id === car).score, 4);
      expect(s.semantic).toBeGreaterThan(0.3);
      expect(s.lexical).toBeGreaterThan(0);
      expect(s.recency).toBeGreaterThan(0.99);
      expect(s.importance).toBe(0.9);
      expect(s.weights).toEqual({ semantic: 0.85, recency: 0.1, importance: 0.05 });
      expect(s.contributions.semantic + s.contributions.recency + s.contributions.importance).toBeCloseTo(s.final, 5);
      expect(res.body).toMatchObject({ eligible: true, rank: 1, indexed: true, degraded: false, reasons: [] });
      const other = await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { query, memory_id: `m_${food}` } });
      expect(other.body.rank).toBe(2);
      expect(other.body.score.final).toBeLessThan(s.final);
      const weighted = await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { query, memory_id: car, weights: { recency: 1, semantic: 0, importance: 0 } } });
      expect(weighted.body.score.final).toBeCloseTo(weighted.body.score.recency, 6);
    });

    it('says why an archived memory cannot match', async () => {
      await server.call('POST', `/api/v1/memories/${food}/archive`, { headers: keyHeaders(key, u) });
      const res = await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { query: 'sushi', memory_id: food } });
      expect(res.body).toMatchObject({ eligible: false, rank: null });
      expect(res.body.reasons[0]).toMatch(/archived/);
    });

    it('is 404 for memories of others, 422 for bad input, 401 without credentials', async () => {
      expect((await server.call('POST', '/api/v1/explain', { headers: keyHeaders(otherKey, u), body: { query: 'car', memory_id: car } })).status).toBe(404);
      expect((await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, 'stranger'), body: { query: 'car', memory_id: car } })).status).toBe(404);
      expect((await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { query: 'car', memory_id: 'x1' } })).status).toBe(422);
      expect((await server.call('POST', '/api/v1/explain', { headers: keyHeaders(key, u), body: { memory_id: car } })).status).toBe(422);
      expect((await server.call('POST', '/api/v1/explain', { body: { query: 'car', memory_id: car } })).status).toBe(401);
    });
  });

  describe('GET /api/v1/refusals', () => {
    it('lists the tenant\'s refusals newest first with pagination, for admins and audit:read keys only', async () => {
      for (const text of ['key AKIAIOSFODNN7EXAMPLE here', '!!!!!!!!!!!!', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----']) {
        expect((await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'leaky'), body: { text } })).status).toBe(422);
      }
      await server.call('POST', '/memory/add', { headers: keyHeaders(otherKey, 'leaky'), body: { text: 'AKIAIOSFODNN7EXAMPLE in another tenant' } });
      const owner = await sessionWithRole(server, tenantId, 'owner');
      const page = await server.call('GET', '/api/v1/refusals?limit=2', { headers: bearer(owner) });
      expect(page.status).toBe(200);
      expect(page.body).toMatchObject({ total: 3, limit: 2, offset: 0 });
      expect(page.body.items.map((r: any) => r.reason)).toEqual(['private_key', 'no_content']);
      const next = await server.call('GET', '/api/v1/refusals?limit=2&offset=2', { headers: bearer(owner) });
      expect(next.body.items.map((r: any) => r.reason)).toEqual(['aws_access_key']);
      expect(next.body.items[0]).toMatchObject({ end_user_id: 'leaky', channel: 'memory.create' });
      expect(JSON.stringify([page.body, next.body])).not.toMatch(/AKIA|MIIE/);
      const filtered = await server.call('GET', '/api/v1/refusals?reason=no_content', { headers: bearer(owner) });
      expect(filtered.body.total).toBe(1);

      const auditKey = await keyWithScopes(server, tenantId, ['audit:read']);
      expect((await server.call('GET', '/api/v1/refusals', { headers: { 'X-API-Key': auditKey } })).body.total).toBe(3);
      expect((await server.call('GET', '/api/v1/refusals', { headers: { 'X-API-Key': key } })).status).toBe(403);
      const member = await sessionWithRole(server, tenantId, 'member');
      expect((await server.call('GET', '/api/v1/refusals', { headers: bearer(member) })).status).toBe(403);
      expect((await server.call('GET', '/api/v1/refusals', {})).status).toBe(401);
      expect((await server.call('GET', '/api/v1/refusals?limit=0', { headers: bearer(owner) })).status).toBe(422);
      expect((await server.call('GET', '/api/v1/refusals?reason=nope', { headers: bearer(owner) })).status).toBe(422);
    });
  });
});
