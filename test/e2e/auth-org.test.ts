import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '#shared/crypto/hashing.ts';
import { newUserPublicId } from '#shared/services/ids.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'correct horse battery';
const uniqueEmail = (label: string) => `${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
const bearer = (token: string, extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${token}`, ...extra });

/** Set-Cookie values as name → value (fetch joins several Set-Cookie headers; getSetCookie keeps them apart). */
function cookiesOf(headers: Headers): Record<string, { value: string; attributes: string }> {
  const out: Record<string, { value: string; attributes: string }> = {};
  for (const line of headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';');
    const i = pair.indexOf('=');
    out[pair.slice(0, i).trim()] = { value: pair.slice(i + 1), attributes: attributes.join(';') };
  }
  return out;
}

describe('auth and organisation over HTTP', () => {
  let server: TestServer;
  const owner = { email: '', jwt: '', refresh: '', userId: '', tenantId: '' };
  let apiKey: string;

  async function signup(email: string, password = PASSWORD, organization_name?: string) {
    return server.call('POST', '/auth/signup', { body: { email, password, ...(organization_name ? { organization_name } : {}) } });
  }
  async function login(email: string, password = PASSWORD) {
    return server.call('POST', '/auth/login', { body: { email, password } });
  }

  beforeAll(async () => {
    server = await startTestServer();
    owner.email = uniqueEmail('owner');
    const res = await signup(owner.email, PASSWORD, 'Owner Org');
    expect(res.status).toBe(201);
    owner.jwt = res.body.tokens.access_token;
    owner.refresh = res.body.tokens.refresh_token;
    owner.userId = res.body.user.id;
    owner.tenantId = res.body.user.tenant_id;
    const key = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'service' } });
    expect(key.status).toBe(201);
    apiKey = key.body.key;
  });
  afterAll(() => server.stop());

  describe('signup and login', () => {
    it('signs up with 201, a token pair and an owner account in a new tenant', async () => {
      const email = uniqueEmail('fresh');
      const res = await signup(email);
      expect(res.status).toBe(201);
      expect(res.body.user).toMatchObject({ email, role: 'owner', tenant_id: expect.stringMatching(/^org_/) });
      expect(res.body.user.tenant_id).not.toBe(owner.tenantId);
      expect(res.body.tokens).toMatchObject({ token_type: 'bearer', access_token: expect.any(String), refresh_token: expect.any(String), expires_in: expect.any(Number) });
      const me = await server.call('GET', '/auth/me', { headers: bearer(res.body.tokens.access_token) });
      expect(me.body).toMatchObject({ email, role: 'owner', tenant_id: res.body.user.tenant_id });
    });

    it('refuses a duplicate email with 409, whatever its case', async () => {
      for (const email of [owner.email, owner.email.toUpperCase()]) {
        const res = await signup(email);
        expect(res.status).toBe(409);
        expect(res.body.error.code).toBe('CONFLICT');
      }
    });

    it('refuses a malformed email and a short password with 422', async () => {
      const email = await signup('not-an-email');
      expect(email.status).toBe(422);
      expect(email.body.error.details.map((d: any) => d.loc.join('.'))).toContain('email');
      const password = await signup(uniqueEmail('short'), 'short');
      expect(password.status).toBe(422);
      expect(password.body.error.message).toBe('password: password must be at least 8 characters');
    });

    it('logs in with 200, tokens and the session plus CSRF cookies', async () => {
      const res = await login(owner.email.toUpperCase());
      expect(res.status).toBe(200);
      expect(res.body.user.id).toBe(owner.userId);
      const cookies = cookiesOf(res.headers);
      expect(cookies.ms_session.value).toBe(res.body.tokens.access_token);
      expect(cookies.ms_session.attributes).toMatch(/HttpOnly/i);
      expect(cookies.ms_csrf.value.length).toBeGreaterThanOrEqual(16);
      expect(cookies.ms_csrf.attributes).not.toMatch(/HttpOnly/i);
    });

    it('answers a wrong password and an unknown email alike: 401 with the same message', async () => {
      const wrong = await login(owner.email, 'wrong password!');
      const unknown = await login(uniqueEmail('nobody'));
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.body.error).toEqual(unknown.body.error);
      expect(wrong.body.error.message).toBe('Invalid email or password');
      expect(wrong.headers.get('set-cookie')).toBeNull();
    });

    it('lets a cookie session read, and write only with the double-submit CSRF token', async () => {
      const res = await login(owner.email);
      const { ms_session, ms_csrf } = cookiesOf(res.headers);
      const cookie = `ms_session=${ms_session.value}; ms_csrf=${ms_csrf.value}`;
      expect((await server.call('GET', '/auth/me', { headers: { Cookie: cookie } })).body.email).toBe(owner.email);
      const noToken = await server.call('POST', '/org/projects', { headers: { Cookie: cookie }, body: { name: 'Via cookie' } });
      expect(noToken.status).toBe(403);
      expect(noToken.body.error.code).toBe('CSRF_TOKEN_INVALID');
      const wrongToken = await server.call('POST', '/org/projects', { headers: { Cookie: cookie, 'X-CSRF-Token': 'not-the-cookie' }, body: { name: 'Via cookie' } });
      expect(wrongToken.status).toBe(403);
      const ok = await server.call('POST', '/org/projects', { headers: { Cookie: cookie, 'X-CSRF-Token': ms_csrf.value }, body: { name: 'Via cookie' } });
      expect(ok.status).toBe(201);
      await server.call('DELETE', `/org/projects/${ok.body.id}`, { headers: bearer(owner.jwt) });
    });

    it('answers /auth/me for a key with its tenant and kind', async () => {
      const me = await server.call('GET', '/auth/me', { headers: { 'X-API-Key': apiKey } });
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ tenant_id: owner.tenantId, kind: 'api_key' });
      expect((await server.call('GET', '/auth/me')).status).toBe(401);
    });
  });

  describe('refresh and logout', () => {
    it('rotates the refresh token, and a reused one revokes the whole family', async () => {
      const start = await login(owner.email);
      const first = start.body.tokens;
      const rotated = await server.call('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } });
      expect(rotated.status).toBe(200);
      const second = rotated.body.tokens;
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(rotated.body.session.id).toBe(start.body.session.id);
      expect((await server.call('GET', '/auth/me', { headers: bearer(second.access_token) })).status).toBe(200);

      const reused = await server.call('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } });
      expect(reused.status).toBe(401);
      expect(reused.body.error.code).toBe('TOKEN_REUSED');
      const newer = await server.call('POST', '/auth/refresh', { body: { refresh_token: second.refresh_token } });
      expect(newer.status).toBe(401);
      expect((await server.call('GET', '/auth/me', { headers: bearer(second.access_token) })).status).toBe(401);
      // other sessions of the same account are not part of the family
      expect((await server.call('GET', '/auth/me', { headers: bearer(owner.jwt) })).status).toBe(200);
    });

    it('refuses an unknown refresh token with 401', async () => {
      const res = await server.call('POST', '/auth/refresh', { body: { refresh_token: 'msr_made_up_token_value' } });
      expect(res.status).toBe(401);
    });

    it('logs out with 204 and the access token stops working at once', async () => {
      const session = (await login(owner.email)).body.tokens;
      expect((await server.call('GET', '/auth/me', { headers: bearer(session.access_token) })).status).toBe(200);
      const out = await server.call('POST', '/auth/logout', { headers: bearer(session.access_token) });
      expect(out.status).toBe(204);
      expect(out.body).toBeNull();
      const me = await server.call('GET', '/auth/me', { headers: bearer(session.access_token) });
      expect(me.status).toBe(401);
      expect((await server.call('POST', '/auth/refresh', { body: { refresh_token: session.refresh_token } })).status).toBe(401);
      expect((await server.call('GET', '/auth/me', { headers: bearer(owner.jwt) })).status).toBe(200);
    });
  });

  describe('memory calls with a session', () => {
    it('owns memories as the signed-in user and ignores X-End-User-ID', async () => {
      const add = await server.call('POST', '/memory/add', { headers: bearer(owner.jwt, { 'X-End-User-ID': 'somebody-else' }), body: { text: 'The owner likes hiking in the Alps.' } });
      expect(add.status).toBe(201);
      expect(add.body.user_id).toBe(owner.userId);
      const q = await server.call('POST', '/memory/query', { headers: bearer(owner.jwt, { 'X-End-User-ID': 'a-third-person' }), body: { query: 'hiking mountains', k: 5 } });
      expect(q.body.memories.map((m: any) => m.id)).toContain(add.body.id);
      const other = await server.call('POST', '/memory/query', { headers: keyHeaders(apiKey, 'somebody-else'), body: { query: 'hiking mountains', k: 5 } });
      expect(other.body.memories).toEqual([]);
      const row = await server.app.db.kysely.selectFrom('memories as m').innerJoin('users as u', 'u.id', 'm.user_id').select(['u.external_id', 'm.tenant_id']).where('m.id', '=', add.body.id).executeTakeFirstOrThrow();
      expect(row).toEqual({ external_id: `${owner.tenantId}:${owner.userId}`, tenant_id: owner.tenantId });
    });
  });

  describe('API keys', () => {
    it('shows the ms_live_ key once; the list carries the prefix only', async () => {
      const created = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'shown once', scopes: ['memories:read'] } });
      expect(created.status).toBe(201);
      expect(created.body.key).toMatch(/^ms_live_[A-Za-z0-9]{20,}$/);
      expect(created.body).toMatchObject({ name: 'shown once', key_prefix: created.body.key.slice(0, created.body.key_prefix.length), scopes: ['memories:read'], environment: 'production' });
      expect(created.body.key_prefix.length).toBeLessThan(created.body.key.length / 2);
      const list = await server.call('GET', '/org/api-keys', { headers: bearer(owner.jwt) });
      expect(list.status).toBe(200);
      const item = list.body.find((k: any) => k.id === created.body.id);
      expect(item).toMatchObject({ key_prefix: created.body.key_prefix, revoked_at: null });
      expect(item).not.toHaveProperty('key');
      expect(JSON.stringify(list.body)).not.toContain(created.body.key);
      const stored = await server.app.db.kysely.selectFrom('api_keys').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(stored)).not.toContain(created.body.key);
      const test = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'dev', environment: 'development' } });
      expect(test.body.key).toMatch(/^ms_test_/);
    });

    it('revokes a key: it gets 401 at once, also right after it was cached', async () => {
      const { body } = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'to revoke' } });
      expect((await server.call('GET', '/org/projects', { headers: { 'X-API-Key': body.key } })).status).toBe(200);
      const revoked = await server.call('DELETE', `/org/api-keys/${body.id}`, { headers: bearer(owner.jwt) });
      expect(revoked.status).toBe(200);
      expect(revoked.body).toMatchObject({ id: body.id, revoked: true, revoked_at: expect.any(String) });
      const after = await server.call('GET', '/org/projects', { headers: { 'X-API-Key': body.key } });
      expect(after.status).toBe(401);
      expect((await server.call('POST', '/memory/query', { headers: keyHeaders(body.key, 'u'), body: { query: 'anything' } })).status).toBe(401);
      expect((await server.call('DELETE', `/org/api-keys/${body.id}`, { headers: bearer(owner.jwt) })).status).toBe(404);
    });

    it('answers 403 with the detail clients read when a key lacks projects:read', async () => {
      const { body } = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'evaluation', scopes: ['memories:read'] } });
      const res = await server.call('GET', '/org/projects', { headers: { 'X-API-Key': body.key } });
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe('Insufficient scope. Missing: projects:read');
      expect(res.body.error.code).toBe('INSUFFICIENT_SCOPE');
      const write = await server.call('POST', '/memory/add', { headers: keyHeaders(body.key, 'u'), body: { text: 'A read-only key tries to write.' } });
      expect(write.status).toBe(403);
      expect(write.body.detail).toBe('Insufficient scope. Missing: memories:write');
      expect((await server.call('POST', '/memory/query', { headers: keyHeaders(body.key, 'u'), body: { query: 'anything' } })).status).toBe(200);
    });

    it('refuses API-key callers on the API-key routes with 403', async () => {
      for (const [method, path, body] of [['POST', '/org/api-keys', { name: 'escalate' }], ['GET', '/org/api-keys', undefined], ['DELETE', '/org/api-keys/1', undefined]] as const) {
        const res = await server.call(method, path, { headers: { 'X-API-Key': apiKey }, body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe('SESSION_REQUIRED');
      }
      expect((await server.call('GET', '/org/api-keys', { headers: { Authorization: `Bearer ${apiKey}` } })).status).toBe(403);
    });

    it('refuses a project lock on a project of another tenant', async () => {
      const other = await signup(uniqueEmail('other'));
      const otherProject = (await server.call('GET', '/org/projects', { headers: bearer(other.body.tokens.access_token) })).body[0].id;
      const res = await server.call('POST', '/org/api-keys', { headers: bearer(owner.jwt), body: { name: 'foreign lock', project_id: otherProject } });
      expect(res.status).toBe(404);
    });
  });

  describe('roles', () => {
    async function accountWithRole(role: 'member' | 'viewer' | 'admin') {
      const email = uniqueEmail(role);
      await server.app.db.kysely.insertInto('users').values({
        public_id: newUserPublicId(), tenant_id: owner.tenantId, kind: 'account', external_id: null, email,
        password_hash: await hashPassword(PASSWORD), full_name: null, role,
      }).execute();
      const res = await login(email);
      expect(res.status).toBe(200);
      return res.body.tokens.access_token as string;
    }

    it('lets members and viewers read projects but not manage projects or keys', async () => {
      for (const role of ['member', 'viewer'] as const) {
        const jwt = await accountWithRole(role);
        expect((await server.call('GET', '/org/projects', { headers: bearer(jwt) })).status).toBe(200);
        const refused = [
          await server.call('POST', '/org/projects', { headers: bearer(jwt), body: { name: 'Not allowed' } }),
          await server.call('POST', '/org/api-keys', { headers: bearer(jwt), body: { name: 'Not allowed' } }),
          await server.call('GET', '/org/api-keys', { headers: bearer(jwt) }),
          await server.call('DELETE', '/org/api-keys/1', { headers: bearer(jwt) }),
        ];
        for (const res of refused) {
          expect(res.status).toBe(403);
          expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
        }
      }
    });

    it('lets an admin manage keys', async () => {
      const jwt = await accountWithRole('admin');
      const res = await server.call('POST', '/org/api-keys', { headers: bearer(jwt), body: { name: 'by admin' } });
      expect(res.status).toBe(201);
    });
  });

  describe('projects', () => {
    it('lists a bare array, default project first, every item with tenant_id', async () => {
      await server.call('POST', '/org/projects', { headers: bearer(owner.jwt), body: { name: 'Aardvark' } });
      for (const headers of [bearer(owner.jwt), { 'X-API-Key': apiKey }]) {
        const res = await server.call('GET', '/org/projects', { headers });
        expect(res.status).toBe(200);
        expect(Array.isArray(res.body)).toBe(true);
        expect(res.body.length).toBeGreaterThanOrEqual(2);
        expect(res.body[0]).toMatchObject({ is_default: true, tenant_id: owner.tenantId, name: 'Default' });
        expect(res.body[0].id).toBe(res.body[0].project_id);
        for (const p of res.body) expect(p.tenant_id).toBe(owner.tenantId);
        expect(res.body.slice(1).every((p: any) => p.is_default === false)).toBe(true);
      }
    });

    it('creates, reads, updates and deletes a project; its memories stay with project_id null', async () => {
      const created = await server.call('POST', '/org/projects', { headers: bearer(owner.jwt), body: { name: 'Research', description: 'papers' } });
      expect(created.status).toBe(201);
      const id = created.body.id;
      expect(created.body).toMatchObject({ id: expect.stringMatching(/^proj_[0-9a-f]{16}$/), project_id: id, name: 'Research', description: 'papers', is_default: false, memory_count: 0, tenant_id: owner.tenantId });
      expect((await server.call('GET', `/org/projects/${id}`, { headers: { 'X-API-Key': apiKey } })).body.name).toBe('Research');
      const patched = await server.call('PATCH', `/org/projects/${id}`, { headers: bearer(owner.jwt), body: { name: 'Research 2', description: null } });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ name: 'Research 2', description: null });

      const inProject = keyHeaders(apiKey, 'project-user', { 'X-Project-ID': id });
      const first = await server.call('POST', '/memory/add', { headers: inProject, body: { text: 'Research memory number one is here.' } });
      const second = await server.call('POST', '/memory/add', { headers: inProject, body: { text: 'Research memory number two is here.' } });
      await server.call('POST', '/memory/bulk-add', { headers: inProject, body: { items: [{ text: 'Research memory number three, bulk.' }] } });
      expect(first.body.project_id).toBe(id);
      expect((await server.call('GET', `/org/projects/${id}`, { headers: bearer(owner.jwt) })).body.memory_count).toBe(3);
      await server.call('DELETE', `/memory/${second.body.id}`, { headers: inProject });
      expect((await server.call('GET', `/org/projects/${id}`, { headers: bearer(owner.jwt) })).body.memory_count).toBe(2);

      const deleted = await server.call('DELETE', `/org/projects/${id}`, { headers: bearer(owner.jwt) });
      expect(deleted.status).toBe(200);
      expect((await server.call('GET', `/org/projects/${id}`, { headers: bearer(owner.jwt) })).status).toBe(404);
      const memory = await server.call('GET', `/memory/${first.body.id}`, { headers: keyHeaders(apiKey, 'project-user') });
      expect(memory.status).toBe(200);
      expect(memory.body).toMatchObject({ project_id: null, text: 'Research memory number one is here.' });
      const gone = await server.call('POST', '/memory/add', { headers: inProject, body: { text: 'Writing into a deleted project.' } });
      expect(gone.status).toBe(404);
      expect((await server.call('GET', '/org/projects', { headers: bearer(owner.jwt) })).body.map((p: any) => p.id)).not.toContain(id);
    });

    it('refuses to delete the default project with 409', async () => {
      const [defaultProject] = (await server.call('GET', '/org/projects', { headers: bearer(owner.jwt) })).body;
      const res = await server.call('DELETE', `/org/projects/${defaultProject.id}`, { headers: bearer(owner.jwt) });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('CONFLICT');
      expect((await server.call('GET', `/org/projects/${defaultProject.id}`, { headers: bearer(owner.jwt) })).status).toBe(200);
    });

    it('refuses project writes to a key without projects:write and validates names', async () => {
      const res = await server.call('POST', '/org/projects', { headers: { 'X-API-Key': apiKey }, body: { name: 'By key' } });
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe('Insufficient scope. Missing: projects:write');
      const blank = await server.call('POST', '/org/projects', { headers: bearer(owner.jwt), body: { name: '   ' } });
      expect(blank.status).toBe(422);
    });
  });
});
