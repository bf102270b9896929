import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { bearer, countRows, fetchManual, signupOwner, type Account } from '../support/accounts.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
interface App { id: string; client_id: string; client_secret: string }

describe('OAuth 2.0 refresh tokens (rotation, reuse detection), introspection (RFC 7662) and revocation (RFC 7009) over HTTP', () => {
  let server: TestServer;
  let owner: Account;
  let app: App;
  let otherApp: App;
  let foreignApp: App; // another organization's app

  const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() })
      .then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any>, headers: r.headers }));
  const basic = (a: App) => ({ authorization: `Basic ${Buffer.from(`${a.client_id}:${a.client_secret}`).toString('base64')}` });
  const post = (a: App) => ({ client_id: a.client_id, client_secret: a.client_secret });

  const createApp = async (account: Account, name: string, scopes = ['memories:read', 'memories:write']) => {
    const res = await server.call('POST', '/org/oauth/apps', { headers: bearer(account.token), body: { name, redirect_uris: [REDIRECT], scopes } });
    expect(res.status).toBe(201);
    return res.body as App;
  };

  /** authorize → approve → code exchange; the token response of an authorization-code grant. */
  async function grant(a: App = app, account: Account = owner) {
    const verifier = randomBytes(48).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({ response_type: 'code', client_id: a.client_id, redirect_uri: REDIRECT, state: 's', code_challenge: challenge, code_challenge_method: 'S256' });
    const pending = await server.call('GET', `/oauth/authorize?${q}`, { headers: bearer(account.token) });
    expect(pending.status).toBe(200);
    const decided = await fetchManual(`${server.url}/oauth/authorize`, { method: 'POST', headers: { ...bearer(account.token), 'content-type': 'application/json' }, body: JSON.stringify({ request_id: pending.body.request_id, decision: 'approve' }) });
    const code = new URL(decided.headers.get('location')!).searchParams.get('code')!;
    const token = await form('/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(a));
    expect(token.status).toBe(200);
    return token.body as { access_token: string; refresh_token: string; scope: string; expires_in: number };
  }

  const query = (accessToken: string) => server.call('POST', '/memory/query', { headers: bearer(accessToken, { 'X-End-User-ID': 'oauth-refresh-user' }), body: { query: 'anything', k: 1 } });
  const auditCount = async (event: string) => Number((await server.app.db.kysely.selectFrom('audit_logs').select((eb) => eb.fn.countAll<number>().as('n')).where('event_type', '=', event).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    server = await startTestServer();
    owner = await signupOwner(server);
    app = await createApp(owner, 'Notebook');
    otherApp = await createApp(owner, 'Other app');
    foreignApp = await createApp(await signupOwner(server, 'foreign'), 'Foreign app');
  });
  afterAll(() => server?.stop());

  it('issues a refresh token with the authorization-code grant (not with client credentials), stored only as a hash', async () => {
    const tokens = await grant();
    expect(tokens.refresh_token).toMatch(/^msrt_/);
    const rows = await server.app.db.kysely.selectFrom('oauth_refresh_tokens').select('token_hash').execute();
    expect(rows.map((r) => r.token_hash)).toContain(createHash('sha256').update(tokens.refresh_token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(tokens.refresh_token);
    const cc = await form('/oauth/token', { grant_type: 'client_credentials', ...post(app) });
    expect(cc.status).toBe(200);
    expect(cc.body).not.toHaveProperty('refresh_token');
  });

  it('rotates: a refresh token gives a new access token and a new refresh token, both working; scope can narrow, not widen', async () => {
    const first = await grant();
    const refreshed = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, basic(app));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'memories:read memories:write' });
    expect(refreshed.headers.get('cache-control')).toContain('no-store');
    expect(refreshed.body.refresh_token).not.toBe(first.refresh_token);
    expect((await query(refreshed.body.access_token)).status).toBe(200);

    const narrowed = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, scope: 'memories:read', ...post(app) });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('memories:read');
    const write = await server.call('POST', '/memory/add', { headers: bearer(narrowed.body.access_token, { 'X-End-User-ID': 'oauth-refresh-user' }), body: { text: 'should not be stored' } });
    expect(write.status).toBe(403);
    // the family keeps the original grant: the next refresh may ask for write again, never for more
    const wider = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: narrowed.body.refresh_token, scope: 'memories:read projects:write' }, basic(app));
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');
    expect(await auditCount('oauth.token_refreshed')).toBeGreaterThanOrEqual(2);
  });

  it('detects reuse: presenting a spent refresh token revokes the whole grant, including its access tokens', async () => {
    const first = await grant();
    const second = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, basic(app));
    expect(second.status).toBe(200);
    expect((await query(second.body.access_token)).status).toBe(200);
    const reusedAudit = await auditCount('oauth.refresh_token_reused');

    const reuse = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, basic(app));
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    expect(await auditCount('oauth.refresh_token_reused')).toBe(reusedAudit + 1);
    // the legitimate holder's newer refresh token and every access token of the family are dead too
    const legit = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: second.body.refresh_token }, basic(app));
    expect(legit.status).toBe(400);
    expect(legit.body.error).toBe('invalid_grant');
    for (const t of [first.access_token, second.body.access_token]) {
      const res = await query(t);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('TOKEN_REVOKED');
    }
    // another grant of the same user and app is untouched
    const other = await grant();
    expect((await query(other.access_token)).status).toBe(200);
  });

  it("refuses a refresh token presented by another client (of this or another organization) without burning it", async () => {
    const tokens = await grant();
    for (const a of [otherApp, foreignApp]) {
      const res = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, basic(a));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    const wrongSecret = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.client_id, client_secret: 'mscs_wrong' });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toBe('invalid_client');
    expect(wrongSecret.headers.get('www-authenticate')).toContain('Basic');
    const missing = await form('/oauth/token', { grant_type: 'refresh_token' }, basic(app));
    expect(missing.body.error).toBe('invalid_request');
    // still good for its own client
    expect((await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, basic(app))).status).toBe(200);
  });

  it('introspects access and refresh tokens of the calling client (Basic and form authentication); anything else is inactive', async () => {
    const tokens = await grant();
    const access = await form('/oauth/introspect', { token: tokens.access_token }, basic(app));
    expect(access.status).toBe(200);
    expect(access.headers.get('cache-control')).toContain('no-store');
    expect(access.body).toMatchObject({ active: true, client_id: app.client_id, scope: 'memories:read memories:write', token_type: 'Bearer', aud: 'memorysync-api' });
    expect(access.body.sub).toMatch(/^usr_/);
    expect(access.body.exp).toBeGreaterThan(Date.now() / 1000);
    const refresh = await form('/oauth/introspect', { token: tokens.refresh_token, token_type_hint: 'refresh_token', ...post(app) });
    expect(refresh.body).toMatchObject({ active: true, client_id: app.client_id, token_type: 'refresh_token', sub: access.body.sub });
    // a wrong hint is only a hint
    expect((await form('/oauth/introspect', { token: tokens.refresh_token, token_type_hint: 'access_token' }, basic(app))).body.active).toBe(true);

    for (const [token, a] of [[tokens.access_token, otherApp], [tokens.access_token, foreignApp], ['not-a-token', app], [`${tokens.access_token.slice(0, -4)}AAAA`, app]] as const) {
      const res = await form('/oauth/introspect', { token }, basic(a));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ active: false });
    }
    const noAuth = await form('/oauth/introspect', { token: tokens.access_token });
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toBe('invalid_client');
    const noToken = await form('/oauth/introspect', {}, basic(app));
    expect(noToken.status).toBe(400);
    expect(noToken.body.error).toBe('invalid_request');
    expect(await auditCount('oauth.token_introspected')).toBeGreaterThanOrEqual(6);
  });

  it('revokes an access token alone, and a refresh token with its whole grant; unknown and foreign tokens get 200 and change nothing', async () => {
    const a = await grant();
    const revoked = await form('/oauth/revoke', { token: a.access_token, token_type_hint: 'access_token' }, basic(app));
    expect(revoked.status).toBe(200);
    expect((await query(a.access_token)).status).toBe(401);
    expect((await form('/oauth/introspect', { token: a.access_token }, basic(app))).body.active).toBe(false);
    // the grant itself lives on
    const next = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: a.refresh_token }, basic(app));
    expect(next.status).toBe(200);
    expect((await query(next.body.access_token)).status).toBe(200);

    const b = await grant();
    expect((await form('/oauth/revoke', { token: b.refresh_token, ...post(app) })).status).toBe(200);
    expect((await query(b.access_token)).status).toBe(401);
    expect((await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: b.refresh_token }, basic(app))).body.error).toBe('invalid_grant');

    // another client revoking our token: 200, nothing revoked
    const c = await grant();
    const revokedRows = await countRows(server, 'oauth_revoked_tokens');
    for (const other of [otherApp, foreignApp]) {
      expect((await form('/oauth/revoke', { token: c.access_token }, basic(other))).status).toBe(200);
      expect((await form('/oauth/revoke', { token: c.refresh_token }, basic(other))).status).toBe(200);
    }
    expect(await countRows(server, 'oauth_revoked_tokens')).toBe(revokedRows);
    expect((await query(c.access_token)).status).toBe(200);
    expect((await form('/oauth/introspect', { token: c.refresh_token }, basic(app))).body.active).toBe(true);
    expect((await form('/oauth/revoke', { token: 'garbage' }, basic(app))).status).toBe(200);
    const unauth = await form('/oauth/revoke', { token: c.access_token, client_id: app.client_id, client_secret: 'nope' });
    expect(unauth.status).toBe(401);
    expect((await query(c.access_token)).status).toBe(200);
    const audits = await server.app.db.kysely.selectFrom('audit_logs').select(['tenant_id', 'payload_json']).where('event_type', '=', 'oauth.token_revoked').execute();
    expect(audits.length).toBeGreaterThanOrEqual(7);
    expect(audits.some((r) => (r.payload_json as any).revoked === 'refresh')).toBe(true);
  });

  it('a client-credentials token can be introspected and revoked by its client', async () => {
    const cc = await form('/oauth/token', { grant_type: 'client_credentials', scope: 'memories:read' }, basic(app));
    const info = await form('/oauth/introspect', { token: cc.body.access_token }, basic(app));
    expect(info.body).toMatchObject({ active: true, scope: 'memories:read', sub: app.client_id });
    await form('/oauth/revoke', { token: cc.body.access_token }, basic(app));
    expect((await query(cc.body.access_token)).status).toBe(401);
  });

  it('deleting the app ends its grants: refresh tokens are refused', async () => {
    const temp = await createApp(owner, 'Temporary');
    const tokens = await grant(temp);
    const del = await server.call('DELETE', `/org/oauth/apps/${temp.id}`, { headers: bearer(owner.token) });
    expect(del.status).toBe(200);
    const res = await form('/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, basic(temp));
    expect(res.status).toBe(401);
    expect(await server.app.db.kysely.selectFrom('oauth_token_families').select('id').where('app_id', '=', temp.id).execute()).toEqual([]);
  });
});
