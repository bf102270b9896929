import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '#shared/http/dispatch.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { projectResolver } from '#shared/http/middleware/project.ts';
import { tenantResolver } from '#shared/http/middleware/tenant.ts';
import { Router } from '#shared/http/router.ts';
import type { HttpMethod, RouteDefinition } from '#shared/http/types.ts';
import { apiEvent } from '../../../support/events.ts';
import { startIdentityFixture, type IdentityFixture } from '../identity-fixture.ts';
import { bodyJson, handlerWith, silentLogger } from '../middy-harness.ts';

/** A route that answers with the scope and end user the middleware resolved. */
const scoped = (method: HttpMethod, path: string, endUser?: RouteDefinition['endUser']): RouteDefinition => ({
  method, path, summary: path, auth: 'any', endUser,
  handler: async (ctx) => ({
    status: 200,
    body: {
      tenantId: ctx.scope?.tenantId ?? null,
      projectId: ctx.scope?.projectId ?? null,
      endUser: ctx.endUser ? { userId: ctx.endUser.userId, external: ctx.endUser.endUserExternalId, projectId: ctx.endUser.projectId } : null,
    },
  }),
});

const router = new Router([
  scoped('POST', '/memory/add', true),
  scoped('GET', '/memory/export', true),
  scoped('GET', '/org/projects'),
  scoped('POST', '/v1/memory/query', 'v1'),
  scoped('GET', '/v1/memory/{tenant_id}/{user_id}/list', 'v1'),
]);

describe('project resolver middleware', () => {
  let fx: IdentityFixture;
  let api: ReturnType<typeof handlerWith>;
  let a: { apiKey: string; tenantId: string; projectId: string };
  let b: { apiKey: string; tenantId: string; projectId: string };
  let research: string;
  let lockedKey: string;
  let session: { accessToken: string; userId: string };

  const add = (headers: Record<string, string>, body: Record<string, unknown> = { text: 'Prefers tea over coffee' }) =>
    api(apiEvent({ method: 'POST', path: '/memory/add', headers, body }));
  const get = (path: string, headers: Record<string, string>) => api(apiEvent({ method: 'GET', path, headers }));

  beforeAll(async () => {
    fx = await startIdentityFixture();
    const identity = fx.app.identity;
    api = handlerWith(
      [tenantResolver({ router, identity }), projectResolver({ router, identity, maxBodyBytes: 1_048_576 }), errorHandler({ logger: silentLogger() })],
      createDispatcher(router, 1_048_576),
    );
    a = await identity.bootstrapTenant('Tenant A');
    b = await identity.bootstrapTenant('Tenant B');
    research = (await identity.createProject(fx.ownerScope(a.tenantId), { name: 'Research' }, fx.meta())).id;
    lockedKey = (await fx.createKey(a.tenantId, { project_id: research, scopes: ['memories:read', 'memories:write'] })).key;
    const signed = await identity.signup({ email: 'member@tenant-s.example', password: 'correct horse battery staple' }, fx.meta());
    session = { accessToken: signed.tokens.access_token, userId: signed.user.id };
  });
  afterAll(() => fx?.app.close());

  describe('X-Project-ID', () => {
    it('leaves memories org-wide (project null) when an unlocked key sends no X-Project-ID', async () => {
      const res = await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'alice' });
      expect(res.statusCode).toBe(200);
      expect(bodyJson(res)).toMatchObject({ tenantId: a.tenantId, projectId: null });
    });

    it("scopes the request to a project of the caller's tenant", async () => {
      const res = await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'alice', 'X-Project-ID': research });
      expect(bodyJson(res)).toMatchObject({ projectId: research, endUser: { projectId: research } });
    });

    it("answers 404 PROJECT_NOT_FOUND for another tenant's project or an unknown one", async () => {
      for (const projectId of [b.projectId, 'proj_0000000000000000']) {
        const res = await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'alice', 'X-Project-ID': projectId });
        expect(res.statusCode).toBe(404);
        expect(bodyJson(res).error.code).toBe('PROJECT_NOT_FOUND');
      }
    });

    it('answers 400 INVALID_PROJECT_ID for a malformed header', async () => {
      const res = await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'alice', 'X-Project-ID': "proj_1' OR 1=1 --" });
      expect(res.statusCode).toBe(400);
      expect(bodyJson(res).error.code).toBe('INVALID_PROJECT_ID');
    });

    it('answers 403 when a project-locked key names another project, even one of its own tenant', async () => {
      for (const projectId of [a.projectId, b.projectId]) {
        const res = await add({ 'X-API-Key': lockedKey, 'X-End-User-ID': 'alice', 'X-Project-ID': projectId });
        expect(res.statusCode).toBe(403);
        expect(bodyJson(res).error.code).toBe('PROJECT_FORBIDDEN');
      }
    });

    it('puts a project-locked key in its project when the header is absent or names the same project', async () => {
      expect(bodyJson(await add({ 'X-API-Key': lockedKey, 'X-End-User-ID': 'alice' })).projectId).toBe(research);
      expect(bodyJson(await add({ 'X-API-Key': lockedKey, 'X-End-User-ID': 'alice', 'X-Project-ID': research })).projectId).toBe(research);
    });

    it('treats an empty or blank X-Project-ID as missing', async () => {
      for (const blank of ['', '   ']) {
        expect(bodyJson(await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'alice', 'X-Project-ID': blank }))).toMatchObject({ projectId: null });
        expect(bodyJson(await add({ 'X-API-Key': lockedKey, 'X-End-User-ID': 'alice', 'X-Project-ID': blank }))).toMatchObject({ projectId: research });
      }
    });

    it('resolves the scope on routes without an end user too', async () => {
      const res = await get('/org/projects', { 'X-API-Key': a.apiKey, 'X-Project-ID': research });
      expect(bodyJson(res)).toEqual({ tenantId: a.tenantId, projectId: research, endUser: null });
    });
  });

  describe('end user', () => {
    it('answers 400 MISSING_END_USER_ID when an API key names no end user', async () => {
      for (const res of [await add({ 'X-API-Key': a.apiKey }), await get('/memory/export', { 'X-API-Key': a.apiKey, 'X-End-User-ID': '  ' })]) {
        expect(res.statusCode).toBe(400);
        expect(bodyJson(res).error.code).toBe('MISSING_END_USER_ID');
      }
    });

    it('takes the end user from X-End-User-ID or, failing that, the body end_user_id', async () => {
      expect(bodyJson(await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'header-user' }, { text: 'x', end_user_id: 'body-user' })).endUser.external).toBe('header-user');
      expect(bodyJson(await add({ 'X-API-Key': a.apiKey }, { text: 'x', end_user_id: 'body-user' })).endUser.external).toBe('body-user');
    });

    it('answers 400 INVALID_END_USER_ID for an id with control characters', async () => {
      const res = await add({ 'X-API-Key': a.apiKey }, { text: 'x', end_user_id: 'bob\u0007admin' });
      expect(res.statusCode).toBe(400);
      expect(bodyJson(res).error.code).toBe('INVALID_END_USER_ID');
    });

    it('maps one external id to one user per tenant, and to different users in different tenants', async () => {
      const first = bodyJson(await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'shared-id' })).endUser.userId;
      const again = bodyJson(await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'shared-id' })).endUser.userId;
      const other = bodyJson(await add({ 'X-API-Key': b.apiKey, 'X-End-User-ID': 'shared-id' })).endUser.userId;
      expect(again).toBe(first);
      expect(other).not.toBe(first);
    });

    it('makes the signed-in account the end user of a session and ignores X-End-User-ID', async () => {
      const res = await add({ Authorization: `Bearer ${session.accessToken}`, 'X-End-User-ID': 'someone-else' });
      expect(res.statusCode).toBe(200);
      expect(bodyJson(res).endUser.external).toBe(session.userId);
    });
  });

  describe('v1 data plane', () => {
    const v1 = (tenantId: string, headers: Record<string, string>) =>
      api(apiEvent({ method: 'POST', path: '/v1/memory/query', headers, body: { tenant_id: tenantId, user_id: 'u1', query: 'tea or coffee?' } }));

    it("accepts tenant_id 'default' and the key's own tenant id, resolving the body user_id", async () => {
      for (const claim of ['default', a.tenantId]) {
        const res = await v1(claim, { 'X-API-Key': a.apiKey });
        expect(res.statusCode).toBe(200);
        expect(bodyJson(res)).toMatchObject({ tenantId: a.tenantId, endUser: { external: 'u1' } });
      }
    });

    it("answers 403 TENANT_MISMATCH for another tenant's id in the body or the path", async () => {
      const body = await v1(b.tenantId, { 'X-API-Key': a.apiKey });
      expect(body.statusCode).toBe(403);
      expect(bodyJson(body).error.code).toBe('TENANT_MISMATCH');
      const path = await get(`/v1/memory/${b.tenantId}/u1/list`, { 'X-API-Key': a.apiKey });
      expect(path.statusCode).toBe(403);
    });

    it('takes tenant and user from the path of the list route', async () => {
      const res = await get(`/v1/memory/default/${encodeURIComponent('user@example.com')}/list`, { 'X-API-Key': a.apiKey });
      expect(bodyJson(res)).toMatchObject({ tenantId: a.tenantId, endUser: { external: 'user@example.com' } });
    });

    it('sees the same end user as X-End-User-ID on /memory/*', async () => {
      const v1User = bodyJson(await v1('default', { 'X-API-Key': a.apiKey })).endUser.userId;
      const memoryUser = bodyJson(await add({ 'X-API-Key': a.apiKey, 'X-End-User-ID': 'u1' })).endUser.userId;
      expect(v1User).toBe(memoryUser);
    });
  });
});
