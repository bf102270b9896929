import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { addMember, bearer, signupOwner, type Account } from '../support/accounts.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

const OPS_EMAIL = `ops-${randomBytes(4).toString('hex')}@platform.test`;

describe('platform admin routes', () => {
  let server: TestServer;
  let ops: Account;
  let customer: Account;

  beforeAll(async () => {
    server = await startTestServer({ PLATFORM_ADMIN_EMAILS: ` Someone@else.test , ${OPS_EMAIL.toUpperCase()} ` });
    const res = await server.call('POST', '/auth/signup', { body: { email: OPS_EMAIL, password: 'operator password', organization_name: 'Platform' } });
    ops = { token: res.body.tokens.access_token, tenantId: res.body.user.tenant_id, email: OPS_EMAIL, userId: res.body.user.id };
    customer = await signupOwner(server, 'customer');
  });
  afterAll(() => server.stop());

  const adminAudit = (eventType: string) => server.app.db.kysely.selectFrom('audit_logs').selectAll().where('event_type', '=', eventType).where('category', '=', 'admin').execute();
  const outboxTasks = (family: string, type: string) => server.app.db.kysely.selectFrom('outbox').selectAll().where('family', '=', family).where('type', '=', type).execute();

  /** A customer tenant with an owner, an API key and memories of two end users. */
  async function populatedTenant(label: string) {
    const owner = await signupOwner(server, label);
    const key = (await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'svc' } })).body.key as string;
    for (const [user, text] of [['alice', 'Alice keeps her passport in the top drawer.'], ['alice', 'Alice is allergic to peanuts and shellfish.'], ['bob', 'Bob parks his bicycle behind the library.']]) {
      const res = await server.call('POST', '/memory/add', { headers: keyHeaders(key, user), body: { text } });
      expect(res.status).toBe(201);
    }
    const endUsers = await server.app.db.kysely.selectFrom('users').select('id').where('tenant_id', '=', owner.tenantId).where('kind', '=', 'end_user').execute();
    return { owner, key, endUserIds: endUsers.map((u) => u.id) };
  }

  it('only platform operators pass: 401 without credentials, 403 for owners of an organization and for API keys', async () => {
    const { apiKey } = await server.newTenant();
    for (const [method, path, body] of [['GET', '/admin/tenants'], ['GET', '/admin/audit-logs'], ['POST', `/admin/tenants/${customer.tenantId}/suspend`], ['DELETE', `/admin/tenants/${customer.tenantId}`], ['POST', '/admin/retention/run', {}], ['POST', '/admin/reindex', {}], ['POST', '/admin/dead-letters/redrive', {}]] as const) {
      expect((await server.call(method, path, { body })).status, `${method} ${path}`).toBe(401);
      expect((await server.call(method, path, { headers: bearer(customer.token), body })).status, `${method} ${path}`).toBe(403);
      expect((await server.call(method, path, { headers: { 'X-API-Key': apiKey }, body })).status, `${method} ${path}`).toBe(403);
    }
    const tenant = await server.app.db.kysely.selectFrom('tenants').select('status').where('id', '=', customer.tenantId).executeTakeFirstOrThrow();
    expect(tenant.status).toBe('active');
  });

  it('lists every tenant with counts, paginated, and audits the read', async () => {
    const { owner } = await populatedTenant('listed');
    const res = await server.call('GET', '/admin/tenants?limit=1000', { headers: bearer(ops.token) });
    expect(res.status).toBe(200);
    const row = res.body.items.find((t: any) => t.id === owner.tenantId);
    expect(row).toMatchObject({ status: 'active', plan: 'free', counts: { accounts: 1, end_users: 2, projects: 1, active_api_keys: 1, memories: 3 } });
    expect(res.body.items.map((t: any) => t.id)).toEqual(expect.arrayContaining([ops.tenantId, customer.tenantId]));
    const page = await server.call('GET', '/admin/tenants?limit=1&offset=1', { headers: bearer(ops.token) });
    expect(page.body).toMatchObject({ limit: 1, offset: 1, total: res.body.total });
    expect(page.body.items).toHaveLength(1);
    expect((await server.call('GET', '/admin/tenants?limit=0', { headers: bearer(ops.token) })).status).toBe(422);
    expect((await adminAudit('admin.tenants_listed')).length).toBeGreaterThanOrEqual(2);
  });

  it('suspends a tenant: its cached key and live session get 403 TENANT_SUSPENDED at once; resume restores them', async () => {
    const { owner, key } = await populatedTenant('suspended');
    const member = await addMember(server, owner.tenantId, 'member');
    // warm the principal cache for both credentials
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(200);
    expect((await server.call('GET', '/org/members', { headers: bearer(member.token) })).status).toBe(200);
    const res = await server.call('POST', `/admin/tenants/${owner.tenantId}/suspend`, { headers: bearer(ops.token) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tenant_id: owner.tenantId, status: 'suspended' });
    for (const headers of [{ 'X-API-Key': key }, bearer(member.token)]) {
      const denied = await server.call('GET', '/org/projects', { headers });
      expect(denied.status).toBe(403);
      expect(denied.body.error.code).toBe('TENANT_SUSPENDED');
    }
    expect((await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'alice'), body: { text: 'Written while suspended, must not land.' } })).status).toBe(403);
    expect((await server.call('POST', '/auth/login', { body: { email: member.email, password: 'correct horse battery' } })).status).toBe(403);
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': (await server.newTenant()).apiKey } })).status).toBe(200);
    expect((await adminAudit('admin.tenant_suspended')).filter((a) => a.tenant_id === owner.tenantId)).toHaveLength(1);

    expect((await server.call('POST', `/admin/tenants/${owner.tenantId}/resume`, { headers: bearer(ops.token) })).body.status).toBe('active');
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(200);
    expect((await server.call('GET', '/org/members', { headers: bearer(member.token) })).status).toBe(200);
  });

  it('answers 404 for an unknown tenant, 422 for a malformed id and 409 for the operator\'s own tenant', async () => {
    expect((await server.call('POST', '/admin/tenants/org_doesnotexist/suspend', { headers: bearer(ops.token) })).status).toBe(404);
    expect((await server.call('DELETE', '/admin/tenants/org_doesnotexist', { headers: bearer(ops.token) })).status).toBe(404);
    expect((await server.call('POST', '/admin/tenants/bad%20id!/suspend', { headers: bearer(ops.token) })).status).toBe(422);
    expect((await server.call('POST', `/admin/tenants/${ops.tenantId}/suspend`, { headers: bearer(ops.token) })).status).toBe(409);
    expect((await server.call('DELETE', `/admin/tenants/${ops.tenantId}`, { headers: bearer(ops.token) })).status).toBe(409);
    expect((await server.app.db.kysely.selectFrom('tenants').select('status').where('id', '=', ops.tenantId).executeTakeFirstOrThrow()).status).toBe('active');
  });

  it('deletes a tenant: data key destroyed first, then rows, vectors and cached credentials; counts returned', async () => {
    const { owner, key, endUserIds } = await populatedTenant('deleted');
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(200); // cached principal
    for (const id of endUserIds) expect((await server.app.vectors.listIds(namespaceForUser(id))).length).toBeGreaterThan(0);

    // The vector store fails during the first attempt: the key must already be gone, the rows still there.
    const vectors = server.app.vectors;
    const original = vectors.deleteNamespace.bind(vectors);
    vectors.deleteNamespace = async () => { throw new Error('vector store unavailable'); };
    const failed = await server.call('DELETE', `/admin/tenants/${owner.tenantId}`, { headers: bearer(ops.token) });
    vectors.deleteNamespace = original;
    expect(failed.status).toBe(500);
    const half = await server.app.db.kysely.selectFrom('tenants').select(['status', 'data_key_wrapped']).where('id', '=', owner.tenantId).executeTakeFirstOrThrow();
    expect(half).toEqual({ status: 'deleting', data_key_wrapped: null });
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(403);

    const res = await server.call('DELETE', `/admin/tenants/${owner.tenantId}`, { headers: bearer(ops.token) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deleted: true, tenant_id: owner.tenantId, data_key_destroyed: true, vector_namespaces: 3, vectors_deleted: 3 });
    expect(res.body.rows).toMatchObject({ tenants: 1, memories: 3, projects: 1, api_keys: 1, users: 3 });
    expect(res.body.cache_entries).toBeGreaterThan(0);
    const db = server.app.db.kysely;
    expect(await db.selectFrom('tenants').select('id').where('id', '=', owner.tenantId).executeTakeFirst()).toBeUndefined();
    for (const table of ['memories', 'users', 'projects', 'api_keys', 'memory_events', 'outbox', 'usage_counters'] as const) {
      const n = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', owner.tenantId).executeTakeFirstOrThrow();
      expect(Number(n.n), table).toBe(0);
    }
    for (const id of endUserIds) expect(await server.app.vectors.listIds(namespaceForUser(id))).toEqual([]);
    expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': key } })).status).toBe(401);
    expect((await server.call('POST', '/auth/login', { body: { email: owner.email, password: 'correct horse battery' } })).status).toBe(401);
    // the audit trail of the deletion stays
    expect((await adminAudit('admin.tenant_deleted')).filter((a) => a.tenant_id === owner.tenantId)).toHaveLength(1);
    // the other tenants are untouched
    expect((await server.call('GET', '/org/members', { headers: bearer(customer.token) })).status).toBe(200);
  });

  it('reads the audit log of every tenant with filters, and audits the read', async () => {
    await server.call('POST', '/org/projects', { headers: bearer(customer.token), body: { name: 'Audited' } });
    const all = await server.call('GET', '/admin/audit-logs?event_type=project.created&limit=100', { headers: bearer(ops.token) });
    expect(all.status).toBe(200);
    expect(all.body.items.every((i: any) => i.event_type === 'project.created')).toBe(true);
    const one = await server.call('GET', `/admin/audit-logs?tenant_id=${customer.tenantId}`, { headers: bearer(ops.token) });
    expect(one.body.total).toBeGreaterThan(0);
    expect(one.body.items.every((i: any) => i.tenant_id === customer.tenantId)).toBe(true);
    const admins = await server.call('GET', '/admin/audit-logs?category=admin', { headers: bearer(ops.token) });
    expect(admins.body.items.every((i: any) => i.category === 'admin')).toBe(true);
    expect(admins.body.items.some((i: any) => i.event_type === 'admin.audit_logs_read')).toBe(true);
    expect((await server.call('GET', '/admin/audit-logs?since=not-a-date', { headers: bearer(ops.token) })).status).toBe(422);
  });

  it('queues a retention sweep and a reindex as outbox tasks, each audited; a dead-letter re-drive runs at once', async () => {
    const { owner } = await populatedTenant('jobs');
    const alice = await server.app.db.kysely.selectFrom('users').select('id').where('external_id', '=', `${owner.tenantId}:alice`).executeTakeFirstOrThrow();

    const retention = await server.call('POST', '/admin/retention/run', { headers: bearer(ops.token), body: {} });
    expect(retention.status).toBe(202);
    expect(retention.body).toMatchObject({ status: 'queued', family: 'retention', type: 'sweep' });
    const reindex = await server.call('POST', '/admin/reindex', { headers: bearer(ops.token), body: { tenant_id: owner.tenantId, end_user_id: 'alice' } });
    expect(reindex.status).toBe(202);
    expect(reindex.body.payload).toEqual({ tenantId: owner.tenantId, userId: alice.id });
    const redrive = await server.call('POST', '/admin/dead-letters/redrive', { headers: bearer(ops.token), body: { family: 'webhook-delivery' } });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toEqual({ status: 'redriven', redriven: 0, results: [{ family: 'webhook-delivery', moved: 0, remaining: 0 }] });

    const tasks = [...(await outboxTasks('retention', 'sweep')), ...(await outboxTasks('embedding', 'reindex')), ...(await outboxTasks('siem-forwarding', 'redrive'))];
    expect(tasks.map((t) => t.task_id).sort()).toEqual([retention.body.task_id, reindex.body.task_id].sort());
    expect(tasks.find((t) => t.family === 'embedding')?.payload).toEqual({ tenantId: owner.tenantId, userId: alice.id });
    for (const [event, taskId] of [['admin.retention_run', retention.body.task_id], ['admin.reindex', reindex.body.task_id]]) {
      expect((await adminAudit(event)).filter((a) => (a.payload_json as any).task_id === taskId), event).toHaveLength(1);
    }
    expect((await adminAudit('admin.dead_letters_redriven')).filter((a) => (a.payload_json as any).family === 'webhook-delivery')).toHaveLength(1);
  });

  it('rejects bad trigger input with 422/404 and queues nothing', async () => {
    const before = Number((await server.app.db.kysely.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    expect((await server.call('POST', '/admin/reindex', { headers: bearer(ops.token), body: { end_user_id: 'alice' } })).status).toBe(422);
    expect((await server.call('POST', '/admin/reindex', { headers: bearer(ops.token), body: { tenant_id: 'org_missing' } })).status).toBe(404);
    expect((await server.call('POST', '/admin/reindex', { headers: bearer(ops.token), body: { tenant_id: customer.tenantId, end_user_id: 'nobody' } })).status).toBe(404);
    expect((await server.call('POST', '/admin/dead-letters/redrive', { headers: bearer(ops.token), body: { family: 'laundry' } })).status).toBe(422);
    expect((await server.call('POST', '/admin/retention/run', { headers: bearer(ops.token), body: { tenant_id: 'x', extra: 1 } })).status).toBe(422);
    expect((await server.call('POST', '/admin/retention/run', { headers: bearer(ops.token) })).status).toBe(422);
    const after = Number((await server.app.db.kysely.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    expect(after).toBe(before);
  });
});
