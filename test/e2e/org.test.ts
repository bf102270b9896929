import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, bearer, countRows, signupOwner, type Account } from '../support/accounts.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/** Webhook fan-out tasks the outbox holds for a tenant, by event name. */
async function webhookEvents(server: TestServer, tenantId: string) {
  const rows = await server.app.db.kysely.selectFrom('outbox').select(['payload']).where('tenant_id', '=', tenantId).where('family', '=', 'webhook-delivery').orderBy('id').execute();
  return rows.map((r) => r.payload as { event: string; data: Record<string, unknown> });
}

async function auditRows(server: TestServer, tenantId: string, eventType: string) {
  return server.app.db.kysely.selectFrom('audit_logs').selectAll().where('tenant_id', '=', tenantId).where('event_type', '=', eventType).execute();
}

describe('organisation: members, invitations, key rotation, audit log, billing', () => {
  let server: TestServer;
  let owner: Account;
  let other: Account;

  beforeAll(async () => {
    server = await startTestServer();
    owner = await signupOwner(server, 'org-owner');
    other = await signupOwner(server, 'org-other');
  });
  afterAll(() => server.stop());

  describe('members', () => {
    it('lists the accounts of the caller\'s organization only, to any role', async () => {
      const viewer = await addMember(server, owner.tenantId, 'viewer');
      const res = await server.call('GET', '/org/members', { headers: bearer(viewer.token) });
      expect(res.status).toBe(200);
      const emails = res.body.map((m: any) => m.email);
      expect(emails).toEqual(expect.arrayContaining([owner.email, viewer.email]));
      expect(emails).not.toContain(other.email);
      expect(res.body.find((m: any) => m.email === owner.email)).toMatchObject({ role: 'owner', id: owner.userId, tenant_id: owner.tenantId });
      expect(JSON.stringify(res.body)).not.toMatch(/password/);
    });

    it('needs a session: 401 without credentials, 403 for an API key', async () => {
      expect((await server.call('GET', '/org/members')).status).toBe(401);
      const { apiKey } = await server.newTenant();
      const res = await server.call('GET', '/org/members', { headers: { 'X-API-Key': apiKey } });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('SESSION_REQUIRED');
    });

    it('lets an admin promote a member, and makes the new role effective on the next request', async () => {
      const admin = await addMember(server, owner.tenantId, 'admin');
      const member = await addMember(server, owner.tenantId, 'member');
      expect((await server.call('POST', '/org/projects', { headers: bearer(member.token), body: { name: 'Before' } })).status).toBe(403);
      const res = await server.call('PATCH', `/org/members/${member.userId}`, { headers: bearer(admin.token), body: { role: 'admin' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: member.userId, role: 'admin' });
      // the member's cached principal was dropped: the same token now carries the admin role
      expect((await server.call('POST', '/org/projects', { headers: bearer(member.token), body: { name: 'After promotion' } })).status).toBe(201);
      const audits = await auditRows(server, owner.tenantId, 'team.member_role_changed');
      expect(audits.filter((a) => a.resource_id === member.userId)).toHaveLength(1);
    });

    it('keeps the owner role to owners: an admin can neither grant it nor demote an owner', async () => {
      const admin = await addMember(server, owner.tenantId, 'admin');
      const member = await addMember(server, owner.tenantId, 'member');
      const grant = await server.call('PATCH', `/org/members/${member.userId}`, { headers: bearer(admin.token), body: { role: 'owner' } });
      expect(grant.status).toBe(403);
      const demote = await server.call('PATCH', `/org/members/${owner.userId}`, { headers: bearer(admin.token), body: { role: 'member' } });
      expect(demote.status).toBe(403);
      const remove = await server.call('DELETE', `/org/members/${owner.userId}`, { headers: bearer(admin.token) });
      expect(remove.status).toBe(403);
      expect((await server.app.db.kysely.selectFrom('users').select('role').where('public_id', '=', owner.userId).executeTakeFirstOrThrow()).role).toBe('owner');
    });

    it('refuses to demote or remove the last owner (409), and allows it once a second owner exists', async () => {
      const org = await signupOwner(server, 'last-owner');
      const demote = await server.call('PATCH', `/org/members/${org.userId}`, { headers: bearer(org.token), body: { role: 'admin' } });
      expect(demote.status).toBe(409);
      expect((await server.call('DELETE', `/org/members/${org.userId}`, { headers: bearer(org.token) })).status).toBe(409);
      const second = await addMember(server, org.tenantId, 'admin');
      const grant = await server.call('PATCH', `/org/members/${second.userId}`, { headers: bearer(org.token), body: { role: 'owner' } });
      expect(grant.status).toBe(200);
      const nowDemote = await server.call('PATCH', `/org/members/${org.userId}`, { headers: bearer(second.token), body: { role: 'admin' } });
      expect(nowDemote.status).toBe(200);
      expect((await server.call('PATCH', `/org/members/${second.userId}`, { headers: bearer(second.token), body: { role: 'member' } })).status).toBe(409);
    });

    it('removes a member: their session ends at once and team.member_removed is queued', async () => {
      const member = await addMember(server, owner.tenantId, 'member');
      expect((await server.call('GET', '/auth/me', { headers: bearer(member.token) })).status).toBe(200);
      const res = await server.call('DELETE', `/org/members/${member.userId}`, { headers: bearer(owner.token) });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ removed: true, user_id: member.userId });
      expect((await server.call('GET', '/auth/me', { headers: bearer(member.token) })).status).toBe(401);
      const events = await webhookEvents(server, owner.tenantId);
      expect(events.filter((e) => e.event === 'team.member_removed' && e.data.user_id === member.userId)).toHaveLength(1);
      expect(await auditRows(server, owner.tenantId, 'team.member_removed')).toHaveLength(1);
    });

    it('answers 404 for a member of another organization and 422 for a malformed id or role, changing nothing', async () => {
      const foreign = await server.call('PATCH', `/org/members/${other.userId}`, { headers: bearer(owner.token), body: { role: 'viewer' } });
      expect(foreign.status).toBe(404);
      expect((await server.call('DELETE', `/org/members/${other.userId}`, { headers: bearer(owner.token) })).status).toBe(404);
      const users = await countRows(server, 'users');
      expect((await server.call('PATCH', '/org/members/not-an-id', { headers: bearer(owner.token), body: { role: 'viewer' } })).status).toBe(422);
      const badRole = await server.call('PATCH', `/org/members/${owner.userId}`, { headers: bearer(owner.token), body: { role: 'superuser' } });
      expect(badRole.status).toBe(422);
      expect(badRole.body.error.code).toBe('VALIDATION_ERROR');
      expect(await countRows(server, 'users')).toBe(users);
      expect((await server.app.db.kysely.selectFrom('users').select('role').where('public_id', '=', other.userId).executeTakeFirstOrThrow()).role).toBe('owner');
    });
  });

  describe('invitations', () => {
    it('invites by email: the token is shown once, stored hashed, valid for 7 days', async () => {
      const email = `invitee-${Date.now()}@example.com`;
      const res = await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email, role: 'member' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ email, role: 'member', status: 'pending' });
      expect(res.body.token).toMatch(/^msi_/);
      const ttl = new Date(res.body.expires_at).getTime() - new Date(res.body.created_at).getTime();
      expect(ttl).toBe(7 * 86_400_000);
      const stored = await server.app.db.kysely.selectFrom('invitations').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
      expect(stored.token_hash).not.toContain(res.body.token);
      const list = await server.call('GET', '/org/invitations', { headers: bearer(owner.token) });
      expect(list.body.find((i: any) => i.id === res.body.id)).toMatchObject({ status: 'pending' });
      expect(JSON.stringify(list.body)).not.toContain(res.body.token);
    });

    it('accepting creates an account in the inviting organization with the invited role; the token works once', async () => {
      const email = `joiner-${Date.now()}@example.com`;
      const inv = await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email, role: 'viewer' } });
      const accept = await server.call('POST', '/auth/invitations/accept', { body: { token: inv.body.token, password: 'long enough secret', full_name: 'Joe Iner' } });
      expect(accept.status).toBe(201);
      expect(accept.body.user).toMatchObject({ email, role: 'viewer', tenant_id: owner.tenantId, full_name: 'Joe Iner' });
      const login = await server.call('POST', '/auth/login', { body: { email, password: 'long enough secret' } });
      expect(login.status).toBe(200);
      expect(login.body.user.tenant_id).toBe(owner.tenantId);
      const again = await server.call('POST', '/auth/invitations/accept', { body: { token: inv.body.token, password: 'long enough secret' } });
      expect(again.status).toBe(400);
      expect(again.body.error.code).toBe('INVALID_INVITATION');
      const events = await webhookEvents(server, owner.tenantId);
      expect(events.filter((e) => e.event === 'team.member_added' && e.data.email === email)).toHaveLength(1);
      expect((await auditRows(server, owner.tenantId, 'team.member_added')).filter((a) => a.resource_id === accept.body.user.id)).toHaveLength(1);
    });

    it('rejects an expired or revoked invitation, and an unknown token, without creating an account', async () => {
      const expired = await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email: `late-${Date.now()}@example.com` } });
      await server.app.db.kysely.updateTable('invitations').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', expired.body.id).execute();
      const revoked = await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email: `revoked-${Date.now()}@example.com` } });
      expect((await server.call('DELETE', `/org/invitations/${revoked.body.id}`, { headers: bearer(owner.token) })).status).toBe(200);
      const users = await countRows(server, 'users');
      for (const token of [expired.body.token, revoked.body.token, 'msi_this-token-was-never-issued']) {
        const res = await server.call('POST', '/auth/invitations/accept', { body: { token, password: 'long enough secret' } });
        expect(res.status).toBe(400);
      }
      expect(await countRows(server, 'users')).toBe(users);
      const list = await server.call('GET', '/org/invitations', { headers: bearer(owner.token) });
      expect(list.body.find((i: any) => i.id === expired.body.id).status).toBe('expired');
      expect(list.body.find((i: any) => i.id === revoked.body.id).status).toBe('revoked');
    });

    it('only admins invite, only owners invite owners, and an existing email is a conflict', async () => {
      const member = await addMember(server, owner.tenantId, 'member');
      const admin = await addMember(server, owner.tenantId, 'admin');
      expect((await server.call('POST', '/org/invitations', { headers: bearer(member.token), body: { email: 'x@example.com' } })).status).toBe(403);
      expect((await server.call('GET', '/org/invitations', { headers: bearer(member.token) })).status).toBe(403);
      expect((await server.call('POST', '/org/invitations', { headers: bearer(admin.token), body: { email: 'y@example.com', role: 'owner' } })).status).toBe(403);
      expect((await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email: other.email } })).status).toBe(409);
      expect((await server.call('POST', '/org/invitations', { body: { email: 'z@example.com' } })).status).toBe(401);
      const before = await countRows(server, 'invitations');
      const bad = await server.call('POST', '/org/invitations', { headers: bearer(owner.token), body: { email: 'not-an-email', role: 'member' } });
      expect(bad.status).toBe(422);
      expect(await countRows(server, 'invitations')).toBe(before);
    });

    it("cannot revoke another organization's invitation (404)", async () => {
      const theirs = await server.call('POST', '/org/invitations', { headers: bearer(other.token), body: { email: `theirs-${Date.now()}@example.com` } });
      const res = await server.call('DELETE', `/org/invitations/${theirs.body.id}`, { headers: bearer(owner.token) });
      expect(res.status).toBe(404);
      const list = await server.call('GET', '/org/invitations', { headers: bearer(other.token) });
      expect(list.body.find((i: any) => i.id === theirs.body.id).status).toBe('pending');
      expect((await server.call('GET', '/org/invitations', { headers: bearer(owner.token) })).body.map((i: any) => i.id)).not.toContain(theirs.body.id);
    });
  });

  describe('API key rotation and scopes', () => {
    it('rotates a key: new secret with the same name, scopes and lock; the old one is revoked at once', async () => {
      const project = await server.call('POST', '/org/projects', { headers: bearer(owner.token), body: { name: 'Rotation' } });
      const created = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'rotating', scopes: ['memories:read', 'projects:read'], project_id: project.body.id } });
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': created.body.key } })).status).toBe(200);
      const rotated = await server.call('POST', `/org/api-keys/${created.body.id}/rotate`, { headers: bearer(owner.token) });
      expect(rotated.status).toBe(201);
      expect(rotated.body).toMatchObject({ name: 'rotating', scopes: ['memories:read', 'projects:read'], project_id: project.body.id, rotated_from: created.body.id, revoked_at: null });
      expect(rotated.body.key).toMatch(/^ms_live_/);
      expect(rotated.body.key).not.toBe(created.body.key);
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': created.body.key } })).status).toBe(401);
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': rotated.body.key } })).status).toBe(200);
      const events = (await webhookEvents(server, owner.tenantId)).filter((e) => ['api_key.created', 'api_key.revoked'].includes(e.event) && [created.body.id, rotated.body.id].includes(e.data.id as number));
      // created (POST), then revoked + created (the rotation)
      expect(events.map((e) => `${e.event}:${e.data.id}`).sort()).toEqual([`api_key.created:${created.body.id}`, `api_key.created:${rotated.body.id}`, `api_key.revoked:${created.body.id}`]);
      expect((await auditRows(server, owner.tenantId, 'api_key.rotated')).filter((a) => a.resource_id === String(rotated.body.id))).toHaveLength(1);
      // rotating the revoked key again is a 404, not a second secret
      expect((await server.call('POST', `/org/api-keys/${created.body.id}/rotate`, { headers: bearer(owner.token) })).status).toBe(404);
    });

    it("refuses rotation to members, API keys and other organizations' keys", async () => {
      const member = await addMember(server, owner.tenantId, 'member');
      const mine = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'mine' } });
      const theirs = await server.call('POST', '/org/api-keys', { headers: bearer(other.token), body: { name: 'theirs' } });
      expect((await server.call('POST', `/org/api-keys/${mine.body.id}/rotate`, { headers: bearer(member.token) })).status).toBe(403);
      expect((await server.call('POST', `/org/api-keys/${mine.body.id}/rotate`, { headers: { 'X-API-Key': mine.body.key } })).status).toBe(403);
      expect((await server.call('POST', `/org/api-keys/${mine.body.id}/rotate`)).status).toBe(401);
      const keys = await countRows(server, 'api_keys');
      expect((await server.call('POST', `/org/api-keys/${theirs.body.id}/rotate`, { headers: bearer(owner.token) })).status).toBe(404);
      expect((await server.call('POST', '/org/api-keys/abc/rotate', { headers: bearer(owner.token) })).status).toBe(422);
      expect(await countRows(server, 'api_keys')).toBe(keys);
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': theirs.body.key } })).status).toBe(200);
    });

    it('enforces memory scopes: a read-only key queries but cannot write, a write-only key cannot read', async () => {
      const ro = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'read only', scopes: ['memories:read'] } });
      const wo = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'write only', scopes: ['memories:write'] } });
      const memories = await countRows(server, 'memories');
      const add = await server.call('POST', '/memory/add', { headers: keyHeaders(ro.body.key, 'scoped-user'), body: { text: 'A read-only key must not store this.' } });
      expect(add.status).toBe(403);
      expect(add.body.detail).toBe('Insufficient scope. Missing: memories:write');
      expect((await server.call('POST', '/v1/memory/add_turn', { headers: keyHeaders(ro.body.key), body: { tenant_id: owner.tenantId, user_id: 'scoped-user', text: 'human: also not stored' } })).status).toBe(403);
      expect(await countRows(server, 'memories')).toBe(memories);
      expect((await server.call('POST', '/memory/query', { headers: keyHeaders(ro.body.key, 'scoped-user'), body: { query: 'anything' } })).status).toBe(200);
      expect((await server.call('POST', '/memory/add', { headers: keyHeaders(wo.body.key, 'scoped-user'), body: { text: 'A write-only key may store this.' } })).status).toBe(201);
      expect((await server.call('POST', '/memory/query', { headers: keyHeaders(wo.body.key, 'scoped-user'), body: { query: 'anything' } })).status).toBe(403);
    });
  });

  describe('role checks per route (sessions)', () => {
    // [method, path, body, lowest role allowed]
    const cases: Array<[string, string, unknown, 'viewer' | 'member' | 'admin' | 'owner']> = [
      ['GET', '/org/members', undefined, 'viewer'],
      ['GET', '/org/projects', undefined, 'viewer'],
      ['GET', '/org/billing', undefined, 'viewer'],
      ['GET', '/org/billing/usage', undefined, 'viewer'],
      ['GET', '/memory/export', undefined, 'viewer'],
      ['POST', '/memory/add', { text: 'Role matrix memory that is long enough.' }, 'member'],
      ['POST', '/memory/query', { query: 'role matrix' }, 'member'],
      ['POST', '/org/projects', { name: 'Role matrix' }, 'admin'],
      ['GET', '/org/api-keys', undefined, 'admin'],
      ['POST', '/org/api-keys', { name: 'role matrix' }, 'admin'],
      ['GET', '/org/invitations', undefined, 'admin'],
      ['GET', '/org/audit-logs', undefined, 'admin'],
      ['PATCH', '/org/billing', { quota_mode: 'silent' }, 'owner'],
    ];
    const ranks = ['viewer', 'member', 'admin', 'owner'] as const;
    const tokens: Record<string, string> = {};

    beforeAll(async () => {
      const org = await signupOwner(server, 'matrix');
      tokens.owner = org.token;
      for (const role of ['viewer', 'member', 'admin'] as const) tokens[role] = (await addMember(server, org.tenantId, role)).token;
    });

    it.each(cases)('%s %s (%j) is allowed from %s up and 403 below', async (method, path, body, min) => {
      for (const role of ranks) {
        const res = await server.call(method, path, { headers: bearer(tokens[role]), body });
        if (ranks.indexOf(role) < ranks.indexOf(min)) {
          expect(res.status, `${role} on ${method} ${path}`).toBe(403);
          expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
        } else {
          expect(res.status, `${role} on ${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
        }
      }
    });
  });

  describe('audit log', () => {
    it('lists the tenant\'s rows newest first with filters and pagination, never another tenant\'s', async () => {
      const org = await signupOwner(server, 'audit');
      for (const name of ['A1', 'A2', 'A3']) await server.call('POST', '/org/projects', { headers: bearer(org.token), body: { name } });
      await server.call('POST', '/org/projects', { headers: bearer(other.token), body: { name: 'Other tenant project' } });
      await server.call('DELETE', '/org/projects/proj_0000000000000000', { headers: bearer(org.token) });
      const all = await server.call('GET', '/org/audit-logs', { headers: bearer(org.token) });
      expect(all.status).toBe(200);
      expect(all.body).toMatchObject({ limit: 50, offset: 0 });
      expect(all.body.items.every((i: any) => i.tenant_id === org.tenantId)).toBe(true);
      const ids = all.body.items.map((i: any) => i.id);
      expect(ids).toEqual([...ids].sort((a, b) => b - a));
      const created = await server.call('GET', '/org/audit-logs?event_type=project.created&limit=2', { headers: bearer(org.token) });
      expect(created.body.total).toBe(3);
      expect(created.body.items).toHaveLength(2);
      expect(created.body.items[0]).toMatchObject({ event_type: 'project.created', category: 'org', status: 'success', user_id: org.userId });
      const page2 = await server.call('GET', '/org/audit-logs?event_type=project.created&limit=2&offset=2', { headers: bearer(org.token) });
      expect(page2.body.items).toHaveLength(1);
      expect(new Set([...created.body.items, ...page2.body.items].map((i: any) => i.id)).size).toBe(3);
      const failures = await server.call('GET', '/org/audit-logs?status=failure', { headers: bearer(org.token) });
      expect(failures.body.items.length).toBeGreaterThan(0);
      expect(failures.body.items.every((i: any) => i.status === 'failure')).toBe(true);
      expect((await server.call('GET', '/org/audit-logs?category=auth', { headers: bearer(org.token) })).body.items.every((i: any) => i.category === 'auth')).toBe(true);
      const future = await server.call('GET', `/org/audit-logs?since=${encodeURIComponent('2999-01-01T00:00:00Z')}`, { headers: bearer(org.token) });
      expect(future.body).toMatchObject({ items: [], total: 0 });
      const past = await server.call('GET', `/org/audit-logs?until=${encodeURIComponent('2000-01-01T00:00:00Z')}`, { headers: bearer(org.token) });
      expect(past.body.total).toBe(0);
    });

    it('opens to keys with audit:read only, and rejects bad filters with 422', async () => {
      const withScope = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'auditor', scopes: ['audit:read'] } });
      const without = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'not auditor' } });
      const ok = await server.call('GET', '/org/audit-logs?limit=5', { headers: { 'X-API-Key': withScope.body.key } });
      expect(ok.status).toBe(200);
      expect(ok.body.items.every((i: any) => i.tenant_id === owner.tenantId)).toBe(true);
      const denied = await server.call('GET', '/org/audit-logs', { headers: { 'X-API-Key': without.body.key } });
      expect(denied.status).toBe(403);
      expect(denied.body.detail).toBe('Insufficient scope. Missing: audit:read');
      expect((await server.call('GET', '/org/audit-logs')).status).toBe(401);
      for (const q of ['limit=0', 'limit=1001', 'offset=-1', 'since=yesterday', 'status=maybe', `since=2025-02-01&until=2025-01-01`]) {
        expect((await server.call('GET', `/org/audit-logs?${q}`, { headers: bearer(owner.token) })).status, q).toBe(422);
      }
    });
  });

  it('documents its routes, with the audit-log filters as query parameters, in the OpenAPI document', async () => {
    const doc = await server.call('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    for (const path of ['/org/members', '/org/members/{user_id}', '/org/invitations', '/auth/invitations/accept', '/org/api-keys/{id}/rotate', '/org/audit-logs', '/org/billing', '/admin/tenants', '/admin/tenants/{id}', '/admin/reindex']) {
      expect(doc.body.paths[path], path).toBeDefined();
    }
    const params = doc.body.paths['/org/audit-logs'].get.parameters.map((p: any) => p.name);
    expect(params).toEqual(expect.arrayContaining(['event_type', 'category', 'status', 'since', 'until', 'limit', 'offset']));
  });

  describe('billing', () => {
    it('shows plan, usage and the plan table; the owner changes plan and quota mode', async () => {
      const org = await signupOwner(server, 'billing');
      const view = await server.call('GET', '/org/billing', { headers: bearer(org.token) });
      expect(view.status).toBe(200);
      expect(view.body).toMatchObject({ plan: 'free', quota_mode: 'silent', adds_used: 0, queries_used: 0 });
      expect(Object.keys(view.body.plans)).toEqual(['free', 'pro', 'enterprise', 'unlimited']);
      expect(new Date(view.body.period_end).getTime()).toBeGreaterThan(new Date(view.body.period_start).getTime());
      const changed = await server.call('PATCH', '/org/billing', { headers: bearer(org.token), body: { plan: 'pro', quota_mode: 'strict' } });
      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({ plan: 'pro', quota_mode: 'strict' });
      expect((await server.call('GET', '/org/billing/usage', { headers: bearer(org.token) })).body).toMatchObject({ plan: 'pro', quota_mode: 'strict' });
      expect(await auditRows(server, org.tenantId, 'billing.plan_changed')).toHaveLength(1);
      expect((await server.call('GET', '/org/billing', { headers: bearer(other.token) })).body.plan).toBe('free');
    });

    it('rejects unknown plans, empty changes, admins and API keys without changing the plan', async () => {
      const org = await signupOwner(server, 'billing-bad');
      const admin = await addMember(server, org.tenantId, 'admin');
      const key = await server.call('POST', '/org/api-keys', { headers: bearer(org.token), body: { name: 'billing key' } });
      expect((await server.call('PATCH', '/org/billing', { headers: bearer(org.token), body: { plan: 'platinum' } })).status).toBe(422);
      expect((await server.call('PATCH', '/org/billing', { headers: bearer(org.token), body: {} })).status).toBe(422);
      expect((await server.call('PATCH', '/org/billing', { headers: bearer(org.token), body: { plan: 'pro', tenant_id: other.tenantId } })).status).toBe(422);
      expect((await server.call('PATCH', '/org/billing', { headers: bearer(admin.token), body: { plan: 'enterprise' } })).status).toBe(403);
      expect((await server.call('PATCH', '/org/billing', { headers: { 'X-API-Key': key.body.key }, body: { plan: 'enterprise' } })).status).toBe(403);
      expect((await server.call('PATCH', '/org/billing', { body: { plan: 'enterprise' } })).status).toBe(401);
      const tenant = await server.app.db.kysely.selectFrom('tenants').select(['plan', 'quota_mode']).where('id', '=', org.tenantId).executeTakeFirstOrThrow();
      expect(tenant).toEqual({ plan: 'free', quota_mode: 'silent' });
      expect((await server.call('GET', '/org/billing', { headers: { 'X-API-Key': key.body.key } })).status).toBe(200);
    });
  });
});
