import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openText } from '#shared/crypto/aead.ts';
import { tokenAad } from '#shared/integrations/sync-engine.ts';
import { refreshTokenAad } from '#shared/services/integration-oauth.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { bearer, sessionWithRole } from '../support/recall-helpers.ts';
import { startProviderServer, type ProviderRequest, type ProviderServer } from '../support/provider-server.ts';

type P = 'github' | 'notion' | 'google_drive' | 'onedrive';
const PROVIDERS: P[] = ['github', 'notion', 'google_drive', 'onedrive'];
/** Each provider's documented token responses (test/fixtures/integrations-oauth). */
const DOCS = Object.fromEntries(PROVIDERS.map((p) => [p, JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/integrations-oauth/${p}.json`, import.meta.url)), 'utf8'))])) as Record<P, any>;
const CLIENT = (p: P) => ({ id: `${p}-client-id`, secret: `${p}-client-secret-0123456789` });
const GOOD_CODE = 'good-code';
const ENV = (p: P) => p.toUpperCase();

describe('integrations: OAuth authorization-code connect per provider against local token endpoints', () => {
  let server: TestServer;
  let idp: ProviderServer;
  let tenant: { apiKey: string; tenantId: string; projectId: string };
  let other: { apiKey: string; tenantId: string; projectId: string };
  /** what the token endpoints answer to a refresh, per provider (switchable to invalid_grant) */
  const refreshAnswer: Record<string, 'refresh' | 'invalid_grant'> = {};

  const tokenRequests = (p: P) => idp.requests.filter((r) => r.method === 'POST' && r.url === `/${p}/token`);
  const fields = (r: ProviderRequest): Record<string, string> => (r.headers['content-type']?.startsWith('application/json') ? JSON.parse(r.body) : Object.fromEntries(new URLSearchParams(r.body)));

  beforeAll(async () => {
    idp = await startProviderServer((req) => {
      const m = /^\/(github|notion|google_drive|onedrive)\/token$/.exec(req.url);
      if (m && req.method === 'POST') {
        const p = m[1] as P;
        const f = fields(req);
        const docs = DOCS[p];
        const bad = () => ({ status: docs.invalid_grant.status, body: docs.invalid_grant.body });
        if (f.grant_type === 'authorization_code') return f.code === GOOD_CODE ? { body: docs.token } : bad();
        if (f.grant_type === 'refresh_token') return refreshAnswer[p] === 'refresh' && docs.refresh ? { body: docs.refresh } : bad();
        return { status: 400, body: { error: 'unsupported_grant_type' } };
      }
      // the providers' APIs: whatever they answer, the test reads which bearer token the connector used
      if (req.url.startsWith('/api/')) return { status: 404, body: { error: { message: 'not in this replay' } } };
      return undefined;
    });
    const env: Record<string, string> = { ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true' };
    for (const p of PROVIDERS) {
      Object.assign(env, {
        [`INTEGRATION_${ENV(p)}_CLIENT_ID`]: CLIENT(p).id, [`INTEGRATION_${ENV(p)}_CLIENT_SECRET`]: CLIENT(p).secret,
        [`INTEGRATION_${ENV(p)}_AUTHORIZE_URL`]: `https://${p.replace('_', '-')}.auth.example/authorize`, [`INTEGRATION_${ENV(p)}_TOKEN_URL`]: `${idp.url}/${p}/token`,
        [`INTEGRATION_${ENV(p)}_API_URL`]: `${idp.url}/api/${p}`,
      });
    }
    server = await startTestServer(env);
    tenant = await server.newTenant('OAuth integrations A');
    other = await server.newTenant('OAuth integrations B');
  });
  afterAll(async () => {
    await server?.stop();
    await idp?.close();
  });

  const start = async (p: P, apiKey = tenant.apiKey, endUser = 'alice') => {
    const res = await server.call('POST', `/api/v1/integrations/${p}/connect`, { headers: keyHeaders(apiKey), body: { end_user_id: endUser } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { authorization_url: string; state: string; expires_in: number };
  };
  const callback = (p: P, query: Record<string, string>) => server.call('GET', `/api/v1/integrations/${p}/callback?${new URLSearchParams(query)}`);
  const connections = async (tenantId = tenant.tenantId) => server.app.db.kysely.selectFrom('integration_connections').selectAll().where('tenant_id', '=', tenantId).execute();
  const open = async (tenantId: string, sealed: Uint8Array, aad: string) => openText((await server.app.tenantKeys.forTenant(tenantId)).dataKey, sealed, aad);

  for (const p of PROVIDERS) {
    it(`${p}: connect answers the authorization URL (state${p === 'notion' ? ', no PKCE' : ' + PKCE S256'}); the callback exchanges the code and stores the tokens sealed`, async () => {
      const before = (await connections()).length;
      const started = await start(p);
      expect(started.expires_in).toBe(600);
      const url = new URL(started.authorization_url);
      expect(url.origin + url.pathname).toBe(`https://${p.replace('_', '-')}.auth.example/authorize`);
      const q = Object.fromEntries(url.searchParams);
      const redirectUri = `${server.url}/api/v1/integrations/${p}/callback`;
      expect(q).toMatchObject({ client_id: CLIENT(p).id, redirect_uri: redirectUri, response_type: 'code', state: started.state });
      if (p === 'notion') {
        expect(q.owner).toBe('user');
        expect(q.code_challenge).toBeUndefined();
      } else {
        expect(q.code_challenge_method).toBe('S256');
        expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
      if (p === 'google_drive') expect(q).toMatchObject({ access_type: 'offline', prompt: 'consent', scope: 'https://www.googleapis.com/auth/drive.readonly' });
      if (p === 'onedrive') expect(q.scope.split(' ')).toContain('offline_access');
      expect((await connections()).length).toBe(before);

      const res = await callback(p, { code: GOOD_CODE, state: started.state });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ provider: p, end_user_id: 'alice', project_id: tenant.projectId, auth_method: 'oauth' });
      expect(JSON.stringify(res.body)).not.toContain(DOCS[p].token.access_token);

      // what reached the token endpoint: the code, our redirect URI, the client's credentials, the PKCE verifier
      const sent = tokenRequests(p).at(-1)!;
      const f = fields(sent);
      expect(f).toMatchObject({ grant_type: 'authorization_code', code: GOOD_CODE, redirect_uri: redirectUri });
      if (p === 'notion') {
        expect(sent.headers['content-type']).toContain('application/json');
        expect(sent.headers.authorization).toBe(`Basic ${Buffer.from(`${CLIENT(p).id}:${CLIENT(p).secret}`).toString('base64')}`);
        expect(f.code_verifier).toBeUndefined();
      } else {
        expect(f).toMatchObject({ client_id: CLIENT(p).id, client_secret: CLIENT(p).secret });
        expect(createHash('sha256').update(f.code_verifier).digest('base64url')).toBe(q.code_challenge);
      }
      if (p === 'github') expect(sent.headers.accept).toContain('application/json');

      const row = (await connections()).find((c) => c.id === res.body.id)!;
      expect(Buffer.from(row.token_ciphertext).includes(Buffer.from(DOCS[p].token.access_token))).toBe(false);
      expect(await open(tenant.tenantId, row.token_ciphertext, tokenAad(tenant.tenantId, row.id))).toBe(DOCS[p].token.access_token);
      if (DOCS[p].token.refresh_token) {
        expect(await open(tenant.tenantId, row.refresh_token_ciphertext!, refreshTokenAad(tenant.tenantId, row.id))).toBe(DOCS[p].token.refresh_token);
        expect(new Date(row.token_expires_at!).getTime()).toBeGreaterThan(Date.now() + (DOCS[p].token.expires_in - 60) * 1000);
      } else {
        expect(row.refresh_token_ciphertext).toBeNull();
        expect(row.token_expires_at).toBeNull();
      }
      // the state was spent: the same callback again is refused and connects nothing
      const again = await callback(p, { code: GOOD_CODE, state: started.state });
      expect(again.status).toBe(400);
      expect(again.body.error.code).toBe('INTEGRATION_STATE_INVALID');
      const audit = await server.app.db.kysely.selectFrom('audit_logs').select('event_type').where('tenant_id', '=', tenant.tenantId).where('resource_id', '=', row.id).execute();
      expect(audit.map((a) => a.event_type)).toEqual(['integration.connected']);
    });

    it(`${p}: the provider's documented invalid_grant answer is a 400 naming it, and nothing is connected`, async () => {
      const before = (await connections()).length;
      const started = await start(p);
      const res = await callback(p, { code: 'expired-code', state: started.state });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INTEGRATION_AUTH_FAILED');
      expect(res.body.error.message).toContain(DOCS[p].invalid_grant.body.error);
      expect((await connections()).length).toBe(before);
    });
  }

  for (const p of ['google_drive', 'onedrive'] as const) {
    it(`${p}: an expiring access token is refreshed before the sync, which then uses the new token`, async () => {
      const started = await start(p, tenant.apiKey, `refresh-${p}`);
      const made = await callback(p, { code: GOOD_CODE, state: started.state });
      const id = made.body.id as string;
      await server.app.db.kysely.updateTable('integration_connections').set({ token_expires_at: new Date(Date.now() + 60_000) }).where('id', '=', id).execute();
      refreshAnswer[p] = 'refresh';
      const apiCallsBefore = idp.requests.length;
      await server.app.integrations.sync(tenant.tenantId, id);

      const refresh = fields(tokenRequests(p).at(-1)!);
      expect(refresh).toMatchObject({ grant_type: 'refresh_token', refresh_token: DOCS[p].token.refresh_token, client_id: CLIENT(p).id, client_secret: CLIENT(p).secret });
      const row = (await connections()).find((c) => c.id === id)!;
      expect(await open(tenant.tenantId, row.token_ciphertext, tokenAad(tenant.tenantId, id))).toBe(DOCS[p].refresh.access_token);
      // Microsoft rotates the refresh token; Google keeps the old one
      expect(await open(tenant.tenantId, row.refresh_token_ciphertext!, refreshTokenAad(tenant.tenantId, id))).toBe(DOCS[p].refresh.refresh_token ?? DOCS[p].token.refresh_token);
      expect(new Date(row.token_expires_at!).getTime()).toBeGreaterThan(Date.now() + 3000 * 1000);
      const apiCalls = idp.requests.slice(apiCallsBefore).filter((r) => r.url.startsWith(`/api/${p}`));
      expect(apiCalls.length).toBeGreaterThan(0);
      expect(apiCalls[0].headers.authorization).toBe(`Bearer ${DOCS[p].refresh.access_token}`);

      // a token with time left is not refreshed
      const refreshes = tokenRequests(p).length;
      await server.app.db.kysely.updateTable('integration_connections').set({ lease_until: null }).where('id', '=', id).execute();
      await server.app.integrations.sync(tenant.tenantId, id);
      expect(tokenRequests(p).length).toBe(refreshes);
    });

    it(`${p}: a refresh refused with invalid_grant marks the connection for reconnecting`, async () => {
      const started = await start(p, tenant.apiKey, `revoked-${p}`);
      const id = (await callback(p, { code: GOOD_CODE, state: started.state })).body.id as string;
      await server.app.db.kysely.updateTable('integration_connections').set({ token_expires_at: new Date(Date.now() - 1000) }).where('id', '=', id).execute();
      refreshAnswer[p] = 'invalid_grant';
      const outcome = await server.app.integrations.sync(tenant.tenantId, id);
      expect(outcome.status).toBe('error');
      const view = await server.call('GET', `/api/v1/integrations/${id}`, { headers: keyHeaders(tenant.apiKey) });
      expect(view.body).toMatchObject({ status: 'error', auth_method: 'oauth' });
      expect(view.body.last_error).toContain('invalid_grant');
      expect(view.body.last_error).toContain('reconnect');
    });
  }

  it('refuses a denied authorization, an unknown state, and a state started for another provider', async () => {
    const before = (await connections()).length;
    const denied = await start('github');
    const res = await callback('github', { error: 'access_denied', state: denied.state });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INTEGRATION_AUTH_DENIED');
    expect((await callback('github', { code: GOOD_CODE, state: denied.state })).status).toBe(400);
    expect((await callback('github', { code: GOOD_CODE, state: 'never-issued-state' })).body.error.code).toBe('INTEGRATION_STATE_INVALID');
    const notion = await start('notion');
    expect((await callback('github', { code: GOOD_CODE, state: notion.state })).body.error.code).toBe('INTEGRATION_STATE_INVALID');
    expect((await callback('github', { code: GOOD_CODE })).status).toBe(422);
    expect((await connections()).length).toBe(before);
  });

  it('lands the connection in the organisation that started it; the other organisation sees nothing of it', async () => {
    const started = await start('github', other.apiKey, 'bob');
    const res = await callback('github', { code: GOOD_CODE, state: started.state });
    expect(res.status).toBe(201);
    expect(res.body.project_id).toBe(other.projectId);
    expect((await connections(other.tenantId)).map((c) => c.id)).toEqual([res.body.id]);
    const peek = await server.call('GET', `/api/v1/integrations/${res.body.id}`, { headers: keyHeaders(tenant.apiKey) });
    expect(peek.status).toBe(404);
    const list = await server.call('GET', '/api/v1/integrations', { headers: keyHeaders(tenant.apiKey) });
    expect(list.body.items.map((i: any) => i.id)).not.toContain(res.body.id);
  });

  it('keeps the token-paste path, and starting a connect needs an admin session or a key with memories:write', async () => {
    const pasted = await server.call('POST', '/api/v1/integrations/github/connect', { headers: keyHeaders(tenant.apiKey), body: { access_token: 'ghp_pasted_token_value', end_user_id: 'carol' } });
    expect(pasted.status).toBe(201);
    expect(pasted.body).toMatchObject({ auth_method: 'token', token_expires_at: null });
    const member = await sessionWithRole(server, tenant.tenantId, 'member');
    const refused = await server.call('POST', '/api/v1/integrations/github/connect', { headers: bearer(member), body: { end_user_id: 'carol' } });
    expect(refused.status).toBe(403);
    const admin = await sessionWithRole(server, tenant.tenantId, 'admin');
    const ok = await server.call('POST', '/api/v1/integrations/github/connect', { headers: bearer(admin), body: { end_user_id: 'carol' } });
    expect(ok.status).toBe(200);
    expect(ok.body.authorization_url).toContain('state=');
  });
});
