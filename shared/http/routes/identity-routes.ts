import { toProjectResponse, type IdentityService } from '../../services/identity-service.ts';
import type { UsageService } from '../../services/usage-service.ts';
import { CSRF_COOKIE, SESSION_COOKIE } from '../middleware/csrf.ts';
import { apiKeyIdParam, createApiKeyBody, createProjectBody, loginBody, patchProjectBody, projectIdParam, refreshBody, signupBody } from '../schemas/identity.ts';
import type { RouteDefinition } from '../types.ts';
import { randomToken } from '../../crypto/hashing.ts';
import { auditMeta, route } from './route.ts';

/** Session cookies for browser dashboards (double-submit CSRF pair); API clients use the tokens in the body. */
function sessionCookies(accessToken: string, ttlSeconds: number): string[] {
  return [
    `${SESSION_COOKIE}=${accessToken}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=${ttlSeconds}`,
    `${CSRF_COOKIE}=${randomToken(18)}; Path=/; Secure; SameSite=Strict; Max-Age=${ttlSeconds}`,
  ];
}

export function identityRoutes(identity: IdentityService, usage: UsageService): RouteDefinition[] {
  return [
    route({
      method: 'POST', path: '/auth/signup', summary: 'Create an account and organization', tags: ['auth'], auth: 'public', body: signupBody,
      audit: { event: 'auth.signup', resource: 'user', category: 'auth' },
      handler: async (ctx) => {
        const result = await identity.signup(ctx.body, auditMeta(ctx));
        return { status: 201, body: result };
      },
    }),
    route({
      method: 'POST', path: '/auth/login', summary: 'Log in with email and password', tags: ['auth'], auth: 'public', body: loginBody,
      audit: { event: 'auth.login', resource: 'session', category: 'auth' },
      handler: async (ctx) => {
        const result = await identity.login(ctx.body, auditMeta(ctx));
        return { status: 200, body: result, cookies: sessionCookies(result.tokens.access_token, result.tokens.expires_in) };
      },
    }),
    route({
      method: 'POST', path: '/auth/refresh', summary: 'Rotate a refresh token', tags: ['auth'], auth: 'public', body: refreshBody,
      audit: { event: 'auth.refresh', resource: 'session', category: 'auth' },
      handler: async (ctx) => ({ status: 200, body: await identity.refresh(ctx.body.refresh_token) }),
    }),
    route({
      method: 'POST', path: '/auth/logout', summary: 'Revoke the current session', tags: ['auth'], auth: 'session', bodyFormat: 'none',
      audit: { event: 'auth.logout', resource: 'session', category: 'auth' },
      handler: async (ctx) => {
        await identity.logout(ctx.principal!, ctx.sessionId);
        return { status: 204 };
      },
    }),
    route({
      method: 'GET', path: '/auth/me', summary: 'The caller', tags: ['auth'], auth: 'any',
      handler: async (ctx) => ({ status: 200, body: await identity.me(ctx.principal!) }),
    }),

    // ------------------------------------------------------------ projects
    route({
      method: 'GET', path: '/org/projects', summary: "List the tenant's projects (bare array)", tags: ['org'], auth: 'any', scopes: ['projects:read'],
      handler: async (ctx) => ({ status: 200, body: await identity.listProjects(ctx.scope!) }),
    }),
    route({
      method: 'POST', path: '/org/projects', summary: 'Create a project', tags: ['org'], auth: 'any', scopes: ['projects:write'], minRole: 'admin', body: createProjectBody,
      audit: { event: 'project.created', resource: 'project', category: 'org' },
      handler: async (ctx) => ({ status: 201, body: await identity.createProject(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/org/projects/{project_id}', summary: 'Get a project', tags: ['org'], auth: 'any', scopes: ['projects:read'], params: projectIdParam,
      handler: async (ctx) => {
        return { status: 200, body: toProjectResponse(await identity.readProjectOrThrow(ctx.scope!, ctx.params.project_id)) };
      },
    }),
    route({
      method: 'PATCH', path: '/org/projects/{project_id}', summary: 'Update a project', tags: ['org'], auth: 'any', scopes: ['projects:write'], minRole: 'admin', params: projectIdParam, body: patchProjectBody,
      audit: { event: 'project.updated', resource: 'project', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await identity.updateProject(ctx.scope!, ctx.params.project_id, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'DELETE', path: '/org/projects/{project_id}', summary: 'Delete a project (memories stay, project_id becomes null)', tags: ['org'], auth: 'any', scopes: ['projects:write'], minRole: 'admin', params: projectIdParam,
      audit: { event: 'project.deleted', resource: 'project', category: 'org' },
      handler: async (ctx) => {
        await identity.deleteProject(ctx.scope!, ctx.params.project_id, auditMeta(ctx));
        return { status: 200, body: { deleted: true, project_id: ctx.params.project_id } };
      },
    }),

    // ------------------------------------------------------------ API keys (signed-in admins)
    route({
      method: 'POST', path: '/org/api-keys', summary: 'Create an API key (plaintext shown once)', tags: ['org'], auth: 'session', minRole: 'admin', body: createApiKeyBody,
      audit: { event: 'api_key.created', resource: 'api_key', category: 'security' },
      handler: async (ctx) => ({ status: 201, body: await identity.createApiKey(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/org/api-keys', summary: 'List API keys (no secrets)', tags: ['org'], auth: 'session', minRole: 'admin',
      handler: async (ctx) => ({ status: 200, body: await identity.listApiKeys(ctx.scope!) }),
    }),
    route({
      method: 'DELETE', path: '/org/api-keys/{id}', summary: 'Revoke an API key', tags: ['org'], auth: 'session', minRole: 'admin', params: apiKeyIdParam,
      audit: { event: 'api_key.revoked', resource: 'api_key', category: 'security' },
      handler: async (ctx) => ({ status: 200, body: { ...(await identity.revokeApiKey(ctx.scope!, ctx.params.id, auditMeta(ctx))), revoked: true } }),
    }),
  ];
}

