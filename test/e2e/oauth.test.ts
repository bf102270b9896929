import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { addMember, bearer, countRows, fetchManual, signupOwner, type Account } from '../support/accounts.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const verifierPair = () => {
  const verifier = randomBytes(48).toString('base64url'); // 64 characters
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe('OAuth 2.0 apps over HTTP', () => {
  let server: TestServer;
  let owner: Account;
  let app: { client_id: string; client_secret: string; id: string };

  const tokenRequest = (form: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() })
      .then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any>, headers: r.headers }));

  /** Runs authorize → approve and returns the code the app's redirect URI receives. */
  async function authorize(account: Account, challenge: string, opts: { scope?: string; state?: string; redirect?: string } = {}) {
    const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: opts.redirect ?? REDIRECT, state: opts.state ?? 'xyz', code_challenge: challenge, code_challenge_method: 'S256', ...(opts.scope ? { scope: opts.scope } : {}) });
    const pending = await server.call('GET', `/oauth/authorize?${q}`, { headers: bearer(account.token) });
    expect(pending.status).toBe(200);
    const decided = await fetchManual(`${server.url}/oauth/authorize`, { method: 'POST', headers: { ...bearer(account.token), 'content-type': 'application/json' }, body: JSON.stringify({ request_id: pending.body.request_id, decision: 'approve' }) });
    expect(decided.status).toBe(302);
    const location = new URL(decided.headers.get('location')!);
    return { code: location.searchParams.get('code')!, location, pending: pending.body };
  }

  beforeAll(async () => {
    server = await startTestServer();
    owner = await signupOwner(server);
    const created = await server.call('POST', '/org/oauth/apps', { headers: bearer(owner.token), body: { name: 'Notebook', redirect_uris: [REDIRECT], scopes: ['memories:read', 'memories:write'] } });
    expect(created.status).toBe(201);
    app = created.body;
  });
  afterAll(() => server.stop());

  it('registers a confidential app: client secret shown once and stored only as a hash', async () => {
    expect(app.client_id).toMatch(/^msc_/);
    expect(app.client_secret).toMatch(/^mscs_/);
    const list = await server.call('GET', '/org/oauth/apps', { headers: bearer(owner.token) });
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).not.toHaveProperty('client_secret');
    const row = await server.app.db.kysely.selectFrom('oauth_apps').selectAll().where('id', '=', app.id).executeTakeFirstOrThrow();
    expect(row.client_secret_hash).toBe(createHash('sha256').update(app.client_secret).digest('hex'));
  });

  it('runs the authorization-code flow with PKCE S256 and the token acts for the end user named in X-End-User-ID', async () => {
    const { verifier, challenge } = verifierPair();
    const { code, location, pending } = await authorize(owner, challenge, { state: 'st-1' });
    expect(pending).toMatchObject({ client_id: app.client_id, client_name: 'Notebook', scope: 'memories:read memories:write', expires_in: 600 });
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('state')).toBe('st-1');
    const basic = `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`;
    const token = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, { authorization: basic });
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'memories:read memories:write' });
    expect(token.headers.get('cache-control')).toContain('no-store');

    const h = bearer(token.body.access_token, { 'X-End-User-ID': 'oauth-user' });
    const add = await server.call('POST', '/memory/add', { headers: h, body: { text: 'The OAuth app stored this memory for me.' } });
    expect(add.status).toBe(201);
    const q = await server.call('POST', '/memory/query', { headers: h, body: { query: 'what did the OAuth app store', k: 1 } });
    expect(q.body.memories[0].id).toBe(add.body.id);
    const noUser = await server.call('POST', '/memory/query', { headers: bearer(token.body.access_token), body: { query: 'x' } });
    expect(noUser.status).toBe(400);
    expect(noUser.body.error.code).toBe('MISSING_END_USER_ID');
  });

  it('refuses a reused code, a wrong verifier and a redirect_uri that differs from the authorization request', async () => {
    const { verifier, challenge } = verifierPair();
    const form = (code: string, extra: Record<string, string> = {}) => ({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret, ...extra });

    const first = await authorize(owner, challenge);
    expect((await tokenRequest(form(first.code))).status).toBe(200);
    const reused = await tokenRequest(form(first.code));
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ error: 'invalid_grant' });

    const second = await authorize(owner, challenge);
    const wrongVerifier = await tokenRequest(form(second.code, { code_verifier: verifierPair().verifier }));
    expect(wrongVerifier.status).toBe(400);
    expect(wrongVerifier.body.error).toBe('invalid_grant');
    expect(wrongVerifier.body.error_description).toContain('code_verifier');
    // the failed attempt spent the code
    expect((await tokenRequest(form(second.code))).body.error).toBe('invalid_grant');

    const third = await authorize(owner, challenge);
    const wrongRedirect = await tokenRequest(form(third.code, { redirect_uri: 'http://127.0.0.1:9/other' }));
    expect(wrongRedirect.status).toBe(400);
    expect(wrongRedirect.body.error).toBe('invalid_grant');

    const tooShort = await tokenRequest(form((await authorize(owner, challenge)).code, { code_verifier: 'short' }));
    expect(tooShort.body.error).toBe('invalid_grant');
  });

  it('never redirects to an unregistered redirect URI and accepts only S256', async () => {
    const { challenge } = verifierPair();
    const base = { response_type: 'code', client_id: app.client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' };
    const evil = await server.call('GET', `/oauth/authorize?${new URLSearchParams({ ...base, redirect_uri: 'https://evil.example/cb' })}`, { headers: bearer(owner.token) });
    expect(evil.status).toBe(400);
    expect(evil.headers.get('location')).toBeNull();
    const plain = await server.call('GET', `/oauth/authorize?${new URLSearchParams({ ...base, code_challenge_method: 'plain' })}`, { headers: bearer(owner.token) });
    expect(plain.status).toBe(400);
    const unknownScope = await server.call('GET', `/oauth/authorize?${new URLSearchParams({ ...base, scope: 'projects:write' })}`, { headers: bearer(owner.token) });
    expect(unknownScope.body.error.code).toBe('invalid_scope');
    const anonymous = await server.call('GET', `/oauth/authorize?${new URLSearchParams(base)}`);
    expect(anonymous.status).toBe(401);
  });

  it('lets a viewer delegate read scopes only, and only the user who started a request may decide it', async () => {
    const viewer = await addMember(server, owner.tenantId, 'viewer');
    const { verifier, challenge } = verifierPair();
    const { code, pending } = await authorize(viewer, challenge);
    expect(pending.scope).toBe('memories:read');
    expect(pending.withheld_scope).toBe('memories:write');
    const token = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: app.client_id, client_secret: app.client_secret });
    const add = await server.call('POST', '/memory/add', { headers: bearer(token.body.access_token, { 'X-End-User-ID': 'u' }), body: { text: 'A viewer cannot let an app write this.' } });
    expect(add.status).toBe(403);
    expect(add.body.error.code).toBe('INSUFFICIENT_SCOPE');

    const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
    const started = await server.call('GET', `/oauth/authorize?${q}`, { headers: bearer(owner.token) });
    const hijack = await server.call('POST', '/oauth/authorize', { headers: bearer(viewer.token), body: { request_id: started.body.request_id, decision: 'approve' } });
    expect(hijack.status).toBe(404);
  });

  it('redirects with error=access_denied when the user denies', async () => {
    const { challenge } = verifierPair();
    const q = new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: REDIRECT, state: 's9', code_challenge: challenge, code_challenge_method: 'S256' });
    const pending = await server.call('GET', `/oauth/authorize?${q}`, { headers: bearer(owner.token) });
    const denied = await fetchManual(`${server.url}/oauth/authorize`, { method: 'POST', headers: { ...bearer(owner.token), 'content-type': 'application/json' }, body: JSON.stringify({ request_id: pending.body.request_id, decision: 'deny' }) });
    const location = new URL(denied.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('state')).toBe('s9');
    expect(location.searchParams.get('code')).toBeNull();
    const rows = await server.app.db.kysely.selectFrom('audit_logs').select('event_type').where('request_id', '=', denied.headers.get('x-request-id')!).execute();
    expect(rows.map((r) => r.event_type)).toEqual(['oauth.denied']);
  });

  it('issues client-credentials tokens to confidential clients only, limited to the requested scope', async () => {
    const cc = await tokenRequest({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'memories:read' });
    expect(cc.status).toBe(200);
    expect(cc.body.scope).toBe('memories:read');
    const h = bearer(cc.body.access_token, { 'X-End-User-ID': 'oauth-user' });
    expect((await server.call('POST', '/memory/query', { headers: h, body: { query: 'OAuth app memory' } })).status).toBe(200);
    const write = await server.call('POST', '/memory/add', { headers: h, body: { text: 'Read-only token must not write this.' } });
    expect(write.status).toBe(403);

    expect((await tokenRequest({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: 'mscs_wrong' })).status).toBe(401);
    expect((await tokenRequest({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'projects:write' })).body.error).toBe('invalid_scope');
    expect((await tokenRequest({ grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret })).body.error).toBe('unsupported_grant_type');

    const publicApp = await server.call('POST', '/org/oauth/apps', { headers: bearer(owner.token), body: { name: 'SPA', client_type: 'public', redirect_uris: [REDIRECT] } });
    expect(publicApp.body.client_secret).toBeUndefined();
    const refused = await tokenRequest({ grant_type: 'client_credentials', client_id: publicApp.body.client_id });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('unauthorized_client');
  });

  it('answers a JSON token request with an OAuth error, not the JSON envelope', async () => {
    const res = await server.call('POST', '/oauth/token', { body: { grant_type: 'client_credentials' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('keeps app management to signed-in admins of the same organization', async () => {
    const member = await addMember(server, owner.tenantId, 'member');
    const { apiKey } = await server.newTenant();
    const other = await signupOwner(server, 'other');
    const before = await countRows(server, 'oauth_apps');
    expect((await server.call('POST', '/org/oauth/apps', { body: { name: 'x' } })).status).toBe(401);
    expect((await server.call('POST', '/org/oauth/apps', { headers: bearer(member.token), body: { name: 'x' } })).status).toBe(403);
    expect((await server.call('GET', '/org/oauth/apps', { headers: keyHeaders(apiKey) })).status).toBe(403);
    const bad = await server.call('POST', '/org/oauth/apps', { headers: bearer(owner.token), body: { name: 'x', redirect_uris: ['http://evil.example/cb'] } });
    expect(bad.status).toBe(422);
    expect(await countRows(server, 'oauth_apps')).toBe(before);
    expect((await server.call('GET', '/org/oauth/apps', { headers: bearer(other.token) })).body).toEqual([]);
    expect((await server.call('DELETE', `/org/oauth/apps/${app.id}`, { headers: bearer(other.token) })).status).toBe(404);
  });

  it('stops accepting an app’s tokens once the app is deleted', async () => {
    const created = await server.call('POST', '/org/oauth/apps', { headers: bearer(owner.token), body: { name: 'Short-lived' } });
    const cc = await tokenRequest({ grant_type: 'client_credentials', client_id: created.body.client_id, client_secret: created.body.client_secret });
    const h = bearer(cc.body.access_token, { 'X-End-User-ID': 'u' });
    expect((await server.call('POST', '/memory/query', { headers: h, body: { query: 'x' } })).status).toBe(200);
    const del = await server.call('DELETE', `/org/oauth/apps/${created.body.id}`, { headers: bearer(owner.token) });
    expect(del.status).toBe(200);
    const after = await server.call('POST', '/memory/query', { headers: h, body: { query: 'x' } });
    expect(after.status).toBe(401);
    const audit = await server.app.db.kysely.selectFrom('audit_logs').select('event_type').where('tenant_id', '=', owner.tenantId).where('resource_id', '=', created.body.id).execute();
    expect(audit.map((a) => a.event_type)).toEqual(expect.arrayContaining(['oauth_app.created', 'oauth.token_issued', 'oauth_app.deleted']));
  });
});
