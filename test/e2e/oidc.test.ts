import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService } from '#shared/services/oidc-service.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { addMember, bearer, countRows, signupOwner, type Account } from '../support/accounts.ts';

/** A map-backed oidc-provider adapter, so the test can register the client once it knows the callback URL. */
const stores = new Map<string, Map<string, Record<string, any>>>();
class MapAdapter {
  private readonly store: Map<string, Record<string, any>>;
  constructor(name: string) {
    this.store = stores.get(name) ?? new Map();
    stores.set(name, this.store);
  }
  async upsert(id: string, payload: Record<string, any>) { this.store.set(id, payload); }
  async find(id: string) { return this.store.get(id); }
  async findByUid(uid: string) { return [...this.store.values()].find((p) => p.uid === uid); }
  async findByUserCode(code: string) { return [...this.store.values()].find((p) => p.userCode === code); }
  async consume(id: string) { const p = this.store.get(id); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id: string) { this.store.delete(id); }
  async revokeByGrantId(grantId: string) { for (const [k, p] of this.store) if (p.grantId === grantId) this.store.delete(k); }
}

/** The people the issuer knows; `sub` is stable, email verified. */
const PEOPLE: Record<string, { email: string; name: string }> = {
  'sub-alice': { email: 'alice.sso@example.com', name: 'Alice Example' },
  'sub-bob': { email: 'bob.sso@example.com', name: 'Bob Example' },
};

/** A browser: cookies per host, redirects followed by hand so every hop can be inspected. */
class Browser {
  private readonly jars = new Map<string, Map<string, string>>();
  async get(url: string): Promise<Response> {
    const u = new URL(url);
    const jar = this.jars.get(u.host) ?? new Map<string, string>();
    this.jars.set(u.host, jar);
    const res = await fetch(url, { redirect: 'manual', headers: jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {} });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const [name, value] = [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }
  /** Follows redirects until a URL under `stopAt` is reached (not fetched) or a non-redirect answer arrives. */
  async follow(url: string, stopAt: string): Promise<string> {
    let next = url;
    for (let hops = 0; hops < 10; hops++) {
      if (next.startsWith(stopAt)) return next;
      const res = await this.get(next);
      if (res.status < 300 || res.status >= 400) throw new Error(`stopped at ${next} with ${res.status}: ${await res.text()}`);
      next = new URL(res.headers.get('location')!, next).toString();
    }
    throw new Error('too many redirects');
  }
  dropCookie(host: string, name: string) { this.jars.get(host)?.delete(name); }
}

describe('OIDC login against a local oidc-provider issuer', () => {
  let server: TestServer;
  let idp: Server;
  let issuer: string;
  let provider: InstanceType<typeof Provider>;
  let owner: Account;
  let sso: { id: string; redirect_uri: string; login_url: string };
  let nextSubject = 'sub-alice';
  const CLIENT_SECRET = 'local-issuer-client-secret-0123456789';

  /** One full login as `subject`: our /login → issuer → (interaction) → back to our callback URL. */
  async function login(browser = new Browser(), subject = 'sub-alice') {
    nextSubject = subject;
    const start = await browser.get(`${server.url}${sso.login_url}`);
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get('location')!);
    const callback = await browser.follow(authorize.toString(), sso.redirect_uri);
    return { browser, authorize, callback };
  }

  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_OIDC_ISSUERS: 'true' });
    idp = createServer();
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = new Provider(issuer, {
      adapter: MapAdapter as never,
      jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] },
      cookies: { keys: ['oidc-test-cookie-key'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      conformIdTokenClaims: false,
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      findAccount: async (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: async () => ({ sub, email: PEOPLE[sub].email, email_verified: true, name: PEOPLE[sub].name }),
      }),
    } as never);
    const callback = provider.callback();
    idp.on('request', async (req: IncomingMessage, res: ServerResponse) => {
      if (!req.url?.startsWith('/interaction/')) return callback(req, res);
      // The user "logs in" as nextSubject and consents to what the client asked for.
      const details = await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId: nextSubject, clientId: details.params.client_id as string });
      grant.addOIDCScope(String(details.params.scope));
      await provider.interactionFinished(req, res, { login: { accountId: nextSubject }, consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: false });
    });

    owner = await signupOwner(server);
    const created = await server.call('POST', '/org/sso/providers', { headers: bearer(owner.token), body: { name: 'Local issuer', issuer, client_id: 'memorysync-test', client_secret: CLIENT_SECRET, default_role: 'member' } });
    expect(created.status).toBe(201);
    sso = created.body;
    await new MapAdapter('Client').upsert('memorysync-test', {
      client_id: 'memorysync-test', client_secret: CLIENT_SECRET, redirect_uris: [sso.redirect_uri],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => idp?.close(resolve));
    await server?.stop();
  });

  it('stores the provider with its client secret sealed by the tenant key and a callback URL on this API', async () => {
    expect(sso.id).toMatch(/^sso_[0-9a-f]{16}$/);
    expect(sso.redirect_uri).toBe(`${server.url}/sso/oidc/${sso.id}/callback`);
    expect(sso).toMatchObject({ issuer, client_id: 'memorysync-test', has_client_secret: true, default_role: 'member' });
    const row = await server.app.db.kysely.selectFrom('sso_providers').selectAll().where('id', '=', sso.id).executeTakeFirstOrThrow();
    expect(Buffer.from(row.client_secret_ciphertext!).toString('latin1')).not.toContain(CLIENT_SECRET);
    const listed = await server.call('GET', '/org/sso/providers', { headers: bearer(owner.token) });
    expect(JSON.stringify(listed.body)).not.toContain(CLIENT_SECRET);
  });

  it('redirects to the issuer with state, nonce and a PKCE S256 challenge, binding the state to the browser', async () => {
    const browser = new Browser();
    const start = await browser.get(`${server.url}${sso.login_url}`);
    const location = new URL(start.headers.get('location')!);
    expect(location.origin).toBe(issuer);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ response_type: 'code', client_id: 'memorysync-test', redirect_uri: sso.redirect_uri, code_challenge_method: 'S256', scope: 'openid email profile' });
    expect(location.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get('nonce')!.length).toBeGreaterThanOrEqual(32);
    expect(start.headers.getSetCookie().join()).toContain(`ms_oidc_state=${location.searchParams.get('state')}`);
  });

  it('logs a new person in end to end, provisioning an account in the tenant that owns the provider', async () => {
    const users = await countRows(server, 'users');
    const { browser, callback } = await login();
    const res = await browser.get(callback);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ user: { email: 'alice.sso@example.com', full_name: 'Alice Example', role: 'member', tenant_id: owner.tenantId }, tokens: { token_type: 'bearer' }, mfa_required: false });
    expect(await countRows(server, 'users')).toBe(users + 1);
    const me = await server.call('GET', '/auth/me', { headers: bearer(body.tokens.access_token) });
    expect(me.body).toMatchObject({ email: 'alice.sso@example.com', tenant_id: owner.tenantId, role: 'member' });
    const refreshed = await server.call('POST', '/auth/refresh', { body: { refresh_token: body.tokens.refresh_token } });
    expect(refreshed.status).toBe(200);

    // the same subject again is the same account, through its link
    const again = await login();
    const second = (await (await again.browser.get(again.callback)).json()) as any;
    expect(second.user.id).toBe(body.user.id);
    expect(await countRows(server, 'users')).toBe(users + 1);
    const audit = await server.app.db.kysely.selectFrom('audit_logs').select('event_type').where('tenant_id', '=', owner.tenantId).where('event_type', '=', 'auth.sso_login').execute();
    expect(audit).toHaveLength(2);
  });

  it('refuses a callback whose state was not started by this browser, a replayed state and an issuer error', async () => {
    const { browser, callback } = await login(new Browser(), 'sub-bob');
    const stranger = await fetch(callback, { redirect: 'manual' });
    expect(stranger.status).toBe(401);
    expect(((await stranger.json()) as any).error.code).toBe('SSO_STATE_INVALID');
    const ok = await browser.get(callback);
    expect(ok.status).toBe(200);
    // the state is single-use: replaying the same callback (cookie re-attached) fails
    const state = new URL(callback).searchParams.get('state');
    const replay = await fetch(callback, { redirect: 'manual', headers: { cookie: `ms_oidc_state=${state}` } });
    expect(replay.status).toBe(401);
    // RFC 9207 mix-up defence: a response naming another issuer is refused before any code exchange
    const mixedUp = await login(new Browser(), 'sub-bob');
    const forged = new URL(mixedUp.callback);
    expect(forged.searchParams.get('iss')).toBe(issuer);
    forged.searchParams.set('iss', 'https://attacker.example');
    const refused = await mixedUp.browser.get(forged.toString());
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as any).error.code).toBe('SSO_ISSUER_MISMATCH');
    const denied = await server.call('GET', `/sso/oidc/${sso.id}/callback?error=access_denied&state=x`);
    expect(denied.status).toBe(401);
    expect(denied.body.error.code).toBe('SSO_DENIED');
  });

  it('does not let an SCIM-deactivated account sign in', async () => {
    const { browser, callback } = await login(new Browser(), 'sub-bob');
    const bob = await server.app.db.kysely.selectFrom('users').select(['id']).where('email', '=', 'bob.sso@example.com').executeTakeFirstOrThrow();
    await server.app.db.kysely.insertInto('scim_users').values({ user_id: bob.id, tenant_id: owner.tenantId, user_name: 'bob', active: false, attributes: '{}' }).execute();
    const res = await browser.get(callback);
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error.code).toBe('ACCOUNT_DISABLED');
  });

  it('refuses loopback and private issuers unless ALLOW_PRIVATE_OIDC_ISSUERS is set', async () => {
    const strict = new OidcService({ db: server.app.db.kysely, cache: server.app.cache, clock: server.app.clock, tenantKeys: server.app.tenantKeys, identity: server.app.identity, allowPrivateIssuers: false });
    const scope = { tenantId: owner.tenantId, projectId: null, principal: { kind: 'session' as const, tenantId: owner.tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner' as const, scopes: [], projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false } };
    const meta = { requestId: 'r', ipAddress: null, userAgent: null, audit: { written: false } };
    for (const bad of [issuer, 'http://169.254.169.254', 'https://10.0.0.8', 'https://[::1]:8443']) {
      await expect(strict.createProvider(scope, { name: 'x', issuer: bad, client_id: 'c', redirect_uri: 'https://x/cb', default_role: 'member' }, meta)).rejects.toMatchObject({ code: 'SSO_ISSUER_REJECTED', status: 422 });
    }
  });

  it('keeps provider management to signed-in admins of the same organization, and rejects bad input writing nothing', async () => {
    const member = await addMember(server, owner.tenantId, 'member');
    const other = await signupOwner(server, 'other');
    const body = { name: 'x', issuer, client_id: 'c' };
    const before = await countRows(server, 'sso_providers');
    expect((await server.call('POST', '/org/sso/providers', { body })).status).toBe(401);
    expect((await server.call('POST', '/org/sso/providers', { headers: bearer(member.token), body })).status).toBe(403);
    expect((await server.call('POST', '/org/sso/providers', { headers: bearer(owner.token), body: { ...body, issuer: 'not a url' } })).status).toBe(422);
    expect((await server.call('POST', '/org/sso/providers', { headers: bearer(owner.token), body: { ...body, scopes: 'email profile' } })).status).toBe(422);
    expect(await countRows(server, 'sso_providers')).toBe(before);
    expect((await server.call('GET', '/org/sso/providers', { headers: bearer(other.token) })).body).toEqual([]);
    expect((await server.call('DELETE', `/org/sso/providers/${sso.id}`, { headers: bearer(other.token) })).status).toBe(404);
    expect((await server.call('GET', '/sso/oidc/sso_0000000000000000/login')).status).toBe(404);
  });
});
