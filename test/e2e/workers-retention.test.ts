import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import type { Principal } from '#shared/services/scope.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, MovableClock, seedMemories } from '../support/worker-fixtures.ts';

/**
 * The retention family end to end on the local runtime: TTL expiry, project policies with a grace,
 * the purge after it, the hourly job's fan-out — and never a row of another tenant.
 */
describe('retention sweeps', () => {
  const clock = new MovableClock();
  let server: TestServer;
  let a: { apiKey: string; tenantId: string; projectId: string };
  let b: { apiKey: string; tenantId: string; projectId: string };
  let userA: number;
  let userB: number;
  const actor = { principal: null, meta: { requestId: 'test', ipAddress: null, userAgent: null, audit: { written: false } } };

  const rows = (tenantId: string) => server.app.db.kysely.selectFrom('memories').select(['id', 'retention_status', 'hard_delete_at']).where('tenant_id', '=', tenantId).orderBy('id').execute();
  const events = (tenantId: string, type: string) => server.app.db.kysely.selectFrom('memory_events').select(['memory_id', 'data', 'created_at']).where('tenant_id', '=', tenantId).where('event_type', '=', type).orderBy('memory_id').execute();
  const vectorIds = async (userId: number) => (await server.app.vectors.listIds(namespaceForUser(userId))).sort((x, y) => x - y);
  const sweep = async (tenantId: string) => {
    await server.app.admin.runRetention(actor, { tenant_id: tenantId });
    await server.queue!.runUntilIdle();
  };
  const snapshotOf = async (tenantId: string, userId: number) => ({
    rows: await rows(tenantId),
    vectors: await vectorIds(userId),
    events: await server.app.db.kysely.selectFrom('memory_events').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow(),
  });

  beforeAll(async () => {
    server = await startTestServer({}, { clock });
    a = await server.newTenant('retention A');
    b = await server.newTenant('retention B');
    await seedMemories(server, a.apiKey, 'u', ['Alpha keeps this note about the harbour.']);
    await seedMemories(server, b.apiKey, 'u', ['Bravo keeps this note about the harbour.']);
    userA = await endUserId(server, a.tenantId, 'u');
    userB = await endUserId(server, b.tenantId, 'u');
  });
  afterAll(async () => {
    await server.stop();
  });

  it('deletes memories past their ttl — row, vector and cached results — only in the swept tenant', async () => {
    const [expiringA] = await seedMemories(server, a.apiKey, 'u', [{ text: 'Temporary door code for the harbour office is 4411.', ttl_minutes: 60 }]);
    const [expiringB] = await seedMemories(server, b.apiKey, 'u', [{ text: 'Temporary door code for the harbour shed is 9922.', ttl_minutes: 60 }]);
    const ask = () => server.call('POST', '/memory/query', { headers: keyHeaders(a.apiKey, 'u'), body: { query: 'harbour door code', k: 5 } });
    expect((await ask()).body.memories.map((m: { id: number }) => m.id)).toContain(expiringA);
    const generation = Number((await server.app.cache.get<number>(`qgen:${a.tenantId}:${userA}`)) ?? 0);
    clock.advanceMinutes(61);
    const before = await snapshotOf(b.tenantId, userB);

    await sweep(a.tenantId);
    expect((await rows(a.tenantId)).map((r) => Number(r.id))).not.toContain(expiringA);
    expect(await vectorIds(userA)).not.toContain(expiringA);
    expect((await events(a.tenantId, 'expired')).map((e) => Number(e.memory_id))).toEqual([expiringA]);
    expect(Number(await server.app.cache.get<number>(`qgen:${a.tenantId}:${userA}`))).toBeGreaterThan(generation);
    expect((await ask()).body.memories.map((m: { id: number }) => m.id)).not.toContain(expiringA);
    // tenant B's expired memory is still there: the sweep of A never reads B's rows
    expect(await snapshotOf(b.tenantId, userB)).toEqual(before);
    expect(await vectorIds(userB)).toContain(expiringB);

    // the hourly job fans out one sweep per tenant
    const job = await server.scheduler.runJob('retention');
    expect(job.status).toBe('ran');
    await server.queue!.runUntilIdle();
    expect((await rows(b.tenantId)).map((r) => Number(r.id))).not.toContain(expiringB);
    expect(await vectorIds(userB)).not.toContain(expiringB);
    expect((await events(b.tenantId, 'expired')).map((e) => Number(e.memory_id))).toEqual([expiringB]);
    // a second run in the same hour queues nothing new
    const outbox = await server.app.db.kysely.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('family', '=', 'retention').executeTakeFirstOrThrow();
    await server.scheduler.runJob('retention');
    const again = await server.app.db.kysely.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('family', '=', 'retention').executeTakeFirstOrThrow();
    expect(Number(again.n)).toBe(Number(outbox.n));
  });

  it('a project policy soft-deletes memories past max_age_days, then purges row and vector after the grace', async () => {
    const put = await server.call('PUT', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(a.apiKey), body: { max_age_days: 30, grace_days: 2 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ project_id: a.projectId, max_age_days: 30, grace_days: 2, configured: true });
    const old = (await rows(a.tenantId)).map((r) => Number(r.id));
    clock.advanceDays(20);
    const [recent] = await seedMemories(server, a.apiKey, 'u', ['A recent note about the harbour regatta.']);
    const [oldB] = await seedMemories(server, b.apiKey, 'u', ['Bravo also has an old note about the regatta.']);
    clock.advanceDays(11);
    const before = await snapshotOf(b.tenantId, userB);

    await sweep(a.tenantId);
    const afterPolicy = await rows(a.tenantId);
    for (const id of old) expect(afterPolicy.find((r) => Number(r.id) === id)).toMatchObject({ retention_status: 'soft_deleted', hard_delete_at: new Date(clock.now().getTime() + 2 * 86_400_000) });
    expect(afterPolicy.find((r) => Number(r.id) === recent)?.retention_status).toBe('active');
    expect((await events(a.tenantId, 'soft_deleted')).map((e) => Number(e.memory_id))).toEqual(old);
    // the vector's metadata follows, so the index filter hides them at once
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(a.apiKey, 'u'), body: { query: 'note about the harbour', k: 10 } });
    expect(q.body.memories.map((m: { id: number }) => m.id)).toEqual([recent]);
    const hits = await server.app.vectors.query(namespaceForUser(userA), (await server.app.embedder.embed(['harbour']))[0], { k: 10, filter: { retentionStatus: ['soft_deleted'] } });
    expect(hits.map((h) => h.memoryId).sort((x, y) => x - y)).toEqual(old);

    clock.advanceDays(1);
    await sweep(a.tenantId);
    expect((await rows(a.tenantId)).filter((r) => r.retention_status === 'soft_deleted')).toHaveLength(old.length); // grace not over

    clock.advanceDays(1);
    await sweep(a.tenantId);
    expect((await rows(a.tenantId)).map((r) => Number(r.id))).toEqual([recent]);
    expect(await vectorIds(userA)).toEqual([recent]);
    expect((await events(a.tenantId, 'purged')).map((e) => Number(e.memory_id))).toEqual(old);
    // B has no policy: its month-old memory is untouched by A's sweeps
    expect(await snapshotOf(b.tenantId, userB)).toEqual(before);
    expect((await rows(b.tenantId)).find((r) => Number(r.id) === oldB)?.retention_status).toBe('active');
  });

  it('a global sweep applies each policy inside its own tenant only', async () => {
    const put = await server.call('PUT', `/org/projects/${b.projectId}/retention`, { headers: keyHeaders(b.apiKey), body: { max_age_days: 1, grace_days: 0 } });
    expect(put.status).toBe(200);
    const [fresh] = await seedMemories(server, a.apiKey, 'u', ['Alpha adds a brand new note today.']);
    clock.advanceDays(2);
    const aBefore = await rows(a.tenantId);
    await server.scheduler.runJob('retention').then(() => server.queue!.runUntilIdle());
    // B: soft-deleted with a zero grace, purged by the next sweep
    expect((await rows(b.tenantId)).every((r) => r.retention_status === 'soft_deleted')).toBe(true);
    // A's policy (30 days) does not reach A's 2-day-old memory, and B's 1-day policy never applies to A
    expect(await rows(a.tenantId)).toEqual(aBefore);
    expect(aBefore.map((r) => Number(r.id))).toContain(fresh);
    clock.advanceMinutes(61);
    await server.scheduler.runJob('retention').then(() => server.queue!.runUntilIdle());
    expect(await rows(b.tenantId)).toEqual([]);
    expect(await vectorIds(userB)).toEqual([]);
    expect(await rows(a.tenantId)).toEqual(aBefore);
  });
});

describe('retention policy routes', () => {
  let server: TestServer;
  let a: { apiKey: string; tenantId: string; projectId: string };
  let b: { apiKey: string; tenantId: string; projectId: string };
  let readOnlyKey: string;

  const policyRows = async () => Number((await server.app.db.kysely.selectFrom('retention_policies').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const auditRows = async (tenantId: string) => server.app.db.kysely.selectFrom('audit_logs').select(['event_type', 'resource_id', 'status']).where('tenant_id', '=', tenantId).where('event_type', '=', 'project.retention_updated').execute();

  beforeAll(async () => {
    server = await startTestServer();
    a = await server.newTenant('policy A');
    b = await server.newTenant('policy B');
    const system: Principal = { kind: 'session', tenantId: a.tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner', scopes: [], projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false };
    readOnlyKey = (await server.app.identity.createApiKey({ tenantId: a.tenantId, projectId: null, principal: system }, { name: 'ro', environment: 'production', scopes: ['memories:read', 'projects:read'] }, { requestId: 't', ipAddress: null, userAgent: null, audit: { written: false } })).key;
  });
  afterAll(async () => {
    await server.stop();
  });

  it('GET answers the defaults before a policy exists; PUT stores it with one audit row', async () => {
    const get = await server.call('GET', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(a.apiKey) });
    expect(get.status).toBe(200);
    expect(get.body).toEqual({ project_id: a.projectId, max_age_days: null, grace_days: 7, configured: false, updated_at: null });
    const put = await server.call('PUT', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(a.apiKey), body: { max_age_days: 365 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ max_age_days: 365, grace_days: 7, configured: true });
    expect(await auditRows(a.tenantId)).toEqual([{ event_type: 'project.retention_updated', resource_id: a.projectId, status: 'success' }]);
    const again = await server.call('GET', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(a.apiKey) });
    expect(again.body).toMatchObject({ max_age_days: 365, configured: true });
  });

  it('401 without credentials, 403 for a key without projects:write, 404 for another tenant, 422 for bad input — nothing written', async () => {
    const count = await policyRows();
    const noAuth = await server.call('PUT', `/org/projects/${a.projectId}/retention`, { body: { max_age_days: 5 } });
    expect(noAuth.status).toBe(401);
    const readOnly = await server.call('PUT', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(readOnlyKey), body: { max_age_days: 5 } });
    expect(readOnly.status).toBe(403);
    expect((await server.call('GET', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(readOnlyKey) })).status).toBe(200);
    const foreign = await server.call('PUT', `/org/projects/${b.projectId}/retention`, { headers: keyHeaders(a.apiKey), body: { max_age_days: 5 } });
    expect(foreign.status).toBe(404);
    expect((await server.call('GET', `/org/projects/${b.projectId}/retention`, { headers: keyHeaders(a.apiKey) })).status).toBe(404);
    for (const body of [{ max_age_days: 0 }, { max_age_days: 'soon' }, { grace_days: 3 }, { max_age_days: 5, grace_days: -1 }, { max_age_days: 5, extra: true }]) {
      const bad = await server.call('PUT', `/org/projects/${a.projectId}/retention`, { headers: keyHeaders(a.apiKey), body });
      expect(bad.status).toBe(422);
      expect(bad.body.error ?? bad.body.detail).toBeTruthy();
    }
    expect(await policyRows()).toBe(count);
    const stored = await server.app.db.kysely.selectFrom('retention_policies').select('max_age_days').where('project_id', '=', a.projectId).executeTakeFirstOrThrow();
    expect(stored.max_age_days).toBe(365);
    expect(await server.app.db.kysely.selectFrom('retention_policies').selectAll().where('tenant_id', '=', b.tenantId).execute()).toEqual([]);
  });
});
