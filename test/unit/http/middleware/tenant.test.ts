import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '#shared/http/dispatch.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { tenantResolver } from '#shared/http/middleware/tenant.ts';
import { Router } from '#shared/http/router.ts';
import type { HttpMethod, RouteAuth, RouteDefinition } from '#shared/http/types.ts';
import { AccessTokens } from '#shared/services/tokens.ts';
import { apiEvent } from '../../../support/events.ts';
import { startIdentityFixture, type IdentityFixture } from '../identity-fixture.ts';
import { bodyJson, handlerWith, silentLogger } from '../middy-harness.ts';

/** A route that answers with the principal the middleware resolved. */
const whoami = (method: HttpMethod, path: string, auth: RouteAuth, extra: Partial<RouteDefinition> = {}): RouteDefinition => ({
  method, path, auth, summary: path, ...extra,
  handler: async (ctx) => ({ status: 200, body: { principal: ctx.principal, sessionId: ctx.sessionId } }),
});

const router = new Router([
  whoami('GET', '/health', 'public'),
  whoami('GET', '/auth/me', 'any'),
  whoami('GET', '/org/projects', 'any', { scopes: ['projects:read'] }),
  whoami('POST', '/auth/logout', 'session'),
  whoami('GET', '/admin/tenants', 'platform-admin'),
]);

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('tenant resolver middleware', () => {
  let fx: IdentityFixture;
  let api: ReturnType<typeof handlerWith>;
  let tenantA: { apiKey: string; tenantId: string };
  let tenantB: { apiKey: string; tenantId: string };
  let session: { accessToken: string; tenantId: string; userId: string };

  const call = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    api(apiEvent({ method, path, headers }));

  beforeAll(async () => {
    fx = await startIdentityFixture();
    api = handlerWith([tenantResolver({ router, identity: fx.app.identity }), errorHandler({ logger: silentLogger() })], createDispatcher(router, 1_048_576));
    tenantA = await fx.app.identity.bootstrapTenant('Tenant A');
    tenantB = await fx.app.identity.bootstrapTenant('Tenant B');
    const signed = await fx.app.identity.signup({ email: 'owner@tenant-c.example', password: 'correct horse battery staple', organization_name: 'Tenant C' }, fx.meta());
    session = { accessToken: signed.tokens.access_token, tenantId: signed.user.tenant_id, userId: signed.user.id };
  });
  afterAll(() => fx?.app.close());

  it('resolves an API key to its tenant and scopes', async () => {
    const res = await call('/auth/me', { 'X-API-Key': tenantA.apiKey });
    expect(res.statusCode).toBe(200);
    expect(bodyJson(res).principal).toMatchObject({ kind: 'api_key', tenantId: tenantA.tenantId, scopes: expect.arrayContaining(['projects:read']) });
  });

  it('answers 401 UNAUTHORIZED without credentials', async () => {
    const res = await call('/auth/me');
    expect(res.statusCode).toBe(401);
    expect(bodyJson(res).error.code).toBe('UNAUTHORIZED');
  });

  it('lets a public route through without credentials, with no principal', async () => {
    const res = await call('/health');
    expect(res.statusCode).toBe(200);
    expect(bodyJson(res).principal).toBeNull();
  });

  it('leaves unknown paths to the dispatcher (404, not 401)', async () => {
    expect((await call('/no/such/route')).statusCode).toBe(404);
  });

  it('answers 401 INVALID_API_KEY for a well-formed key that does not exist and for a malformed one', async () => {
    for (const key of [`ms_live_${'Z'.repeat(32)}`, 'not-a-key', `${tenantA.apiKey}x`]) {
      const res = await call('/auth/me', { 'X-API-Key': key });
      expect(res.statusCode).toBe(401);
      expect(bodyJson(res).error.code).toBe('INVALID_API_KEY');
    }
  });

  it('refuses a revoked key at once, even right after a success cached its principal', async () => {
    const { key, id } = await fx.createKey(tenantA.tenantId, { scopes: ['memories:read'] });
    expect((await call('/auth/me', { 'X-API-Key': key })).statusCode).toBe(200);
    await fx.app.identity.revokeApiKey(fx.ownerScope(tenantA.tenantId), id, fx.meta());
    const res = await call('/auth/me', { 'X-API-Key': key });
    expect(res.statusCode).toBe(401);
    expect(bodyJson(res).error.code).toBe('INVALID_API_KEY');
  });

  it('answers 400 INVALID_TENANT_ID_FORMAT for an X-Tenant-ID with forbidden characters or length', async () => {
    for (const bad of ["org_1' OR '1'='1", 'org/../other', 'a'.repeat(65), 'tenant id']) {
      const res = await call('/auth/me', { 'X-API-Key': tenantA.apiKey, 'X-Tenant-ID': bad });
      expect(res.statusCode).toBe(400);
      expect(bodyJson(res).error.code).toBe('INVALID_TENANT_ID_FORMAT');
    }
  });

  it("answers 403 for an X-Tenant-ID naming another tenant, and never adopts it", async () => {
    const res = await call('/auth/me', { 'X-API-Key': tenantA.apiKey, 'X-Tenant-ID': tenantB.tenantId });
    expect(res.statusCode).toBe(403);
    expect(bodyJson(res).error.code).toBe('TENANT_MISMATCH');
  });

  it("accepts X-Tenant-ID equal to the key's own tenant or 'default', keeping the key's tenant", async () => {
    for (const claim of [tenantA.tenantId, 'default']) {
      const res = await call('/auth/me', { 'X-API-Key': tenantA.apiKey, 'X-Tenant-ID': claim });
      expect(res.statusCode).toBe(200);
      expect(bodyJson(res).principal.tenantId).toBe(tenantA.tenantId);
    }
  });

  it('answers 403 INSUFFICIENT_SCOPE naming the missing scope, also in detail', async () => {
    const { key } = await fx.createKey(tenantA.tenantId, { scopes: ['memories:read', 'memories:write'] });
    const res = await call('/org/projects', { 'X-API-Key': key });
    expect(res.statusCode).toBe(403);
    expect(bodyJson(res)).toMatchObject({
      error: { code: 'INSUFFICIENT_SCOPE', message: 'Insufficient scope. Missing: projects:read' },
      detail: 'Insufficient scope. Missing: projects:read',
    });
    expect((await call('/org/projects', { 'X-API-Key': tenantA.apiKey })).statusCode).toBe(200);
  });

  it('accepts the same key sent in both X-API-Key and Authorization: Bearer, and a key sent only as Bearer', async () => {
    const both = await call('/auth/me', { 'X-API-Key': tenantA.apiKey, Authorization: `Bearer ${tenantA.apiKey}` });
    expect(both.statusCode).toBe(200);
    expect(bodyJson(both).principal).toMatchObject({ kind: 'api_key', tenantId: tenantA.tenantId });
    const bearerOnly = await call('/auth/me', { authorization: `bearer ${tenantA.apiKey}` });
    expect(bodyJson(bearerOnly).principal).toMatchObject({ kind: 'api_key', tenantId: tenantA.tenantId });
  });

  it('authenticates X-API-Key when Authorization carries some other bearer value', async () => {
    const res = await call('/auth/me', { 'X-API-Key': tenantB.apiKey, Authorization: 'Bearer placeholder-from-an-sdk' });
    expect(bodyJson(res).principal.tenantId).toBe(tenantB.tenantId);
  });

  it('answers 401 for an Authorization scheme other than Bearer', async () => {
    expect((await call('/auth/me', { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).statusCode).toBe(401);
  });

  it('resolves a valid access token to the session principal of its account', async () => {
    const res = await call('/auth/me', { Authorization: `Bearer ${session.accessToken}` });
    expect(res.statusCode).toBe(200);
    expect(bodyJson(res).principal).toMatchObject({ kind: 'session', tenantId: session.tenantId, accountPublicId: session.userId, role: 'owner' });
    expect(bodyJson(res).sessionId).toMatch(/^ses_/);
  });

  it('resolves the access token from the ms_session cookie', async () => {
    const res = await call('/auth/me', { Cookie: `theme=dark; ms_session=${session.accessToken}` });
    expect(bodyJson(res).principal).toMatchObject({ kind: 'session', tenantId: session.tenantId });
  });

  it('answers 401 for a token with alg none', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${session.accessToken.split('.')[1]}.`;
    const res = await call('/auth/me', { Authorization: `Bearer ${unsigned}` });
    expect(res.statusCode).toBe(401);
    expect(bodyJson(res).error.code).toBe('INVALID_TOKEN');
  });

  it('answers 401 for a token whose claims or signature were tampered with', async () => {
    const [header, , signature] = session.accessToken.split('.');
    const claims: Record<string, unknown> = { ...claimsOf(session.accessToken), tid: tenantB.tenantId };
    const forgedClaims = `${header}.${b64(claims)}.${signature}`;
    const otherSecret = await new AccessTokens('another-secret-of-at-least-32-characters!!', 'memorysync', 900)
      .sign({ sub: session.userId, tid: session.tenantId, sid: String(claims.sid), role: 'owner' });
    for (const token of [forgedClaims, otherSecret]) {
      const res = await call('/auth/me', { Authorization: `Bearer ${token}` });
      expect(res.statusCode).toBe(401);
      expect(bodyJson(res).error.code).toBe('INVALID_TOKEN');
    }
  });

  it('answers 401 TOKEN_EXPIRED for a correctly signed token past its expiry', async () => {
    const claims = claimsOf(session.accessToken);
    const expired = await new AccessTokens(fx.jwtSecret, 'memorysync', -120).sign({ sub: session.userId, tid: session.tenantId, sid: String(claims.sid), role: 'owner' });
    const res = await call('/auth/me', { Authorization: `Bearer ${expired}` });
    expect(res.statusCode).toBe(401);
    expect(bodyJson(res).error.code).toBe('TOKEN_EXPIRED');
  });

  it('answers 401 for a bearer value that is neither a key nor a JWT', async () => {
    expect((await call('/auth/me', { Authorization: 'Bearer hunter2' })).statusCode).toBe(401);
  });

  it('answers 403 when an API key calls a session-only route, and when a non-operator calls an admin route', async () => {
    const logout = await call('/auth/logout', { 'X-API-Key': tenantA.apiKey }, 'POST');
    expect(logout.statusCode).toBe(403);
    expect(bodyJson(logout).error.code).toBe('SESSION_REQUIRED');
    expect((await call('/admin/tenants', { Authorization: `Bearer ${session.accessToken}` })).statusCode).toBe(403);
  });

  it('refuses an access token once its session has logged out', async () => {
    const login = await fx.app.identity.login({ email: 'owner@tenant-c.example', password: 'correct horse battery staple' }, fx.meta());
    const token = login.tokens.access_token;
    const me = await call('/auth/me', { Authorization: `Bearer ${token}` });
    expect(me.statusCode).toBe(200);
    await fx.app.identity.logout(bodyJson(me).principal, login.session.id);
    const res = await call('/auth/me', { Authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(401);
  });
});
