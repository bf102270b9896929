import { z } from 'zod';
import { basicClientCredentials, type OAuthService } from '../../services/oauth-service.ts';
import { authorizeDecisionBody, authorizeQuery, createOAuthAppBody, introspectionResponse, oauthAppParam, tokenBody, tokenLookupBody, tokenResponse } from '../schemas/oauth.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const oauthApp = z.object({
  id: z.string(), name: z.string(), client_id: z.string(), client_type: z.enum(['confidential', 'public']), redirect_uris: z.array(z.string()),
  scopes: z.array(z.string()), created_at: z.string(),
});
const pendingAuthorization = z.object({
  request_id: z.string(), client_id: z.string(), client_name: z.string(), redirect_uri: z.string(), state: z.string().nullable(),
  scope: z.string(), withheld_scope: z.string(), expires_in: z.number().int(),
});

export function oauthRoutes(oauth: OAuthService): RouteDefinition[] {
  return [
    route({
      method: 'POST', path: '/org/oauth/apps', summary: 'Register an OAuth app (client_secret of confidential clients shown once)', tags: ['oauth'], auth: 'session', minRole: 'admin',
      body: createOAuthAppBody, responses: { 201: oauthApp.extend({ client_secret: z.string().optional() }) }, audit: { event: 'oauth_app.created', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => ({ status: 201, body: await oauth.createApp(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/org/oauth/apps', summary: "List the organization's OAuth apps (no secrets)", tags: ['oauth'], auth: 'session', minRole: 'admin',
      responses: { 200: z.array(oauthApp) },
      handler: async (ctx) => ({ status: 200, body: await oauth.listApps(ctx.scope!) }),
    }),
    route({
      method: 'DELETE', path: '/org/oauth/apps/{app_id}', summary: 'Delete an OAuth app; its tokens stop working at once', tags: ['oauth'], auth: 'session', minRole: 'admin',
      params: oauthAppParam, responses: { 200: oauthApp.extend({ deleted: z.literal(true) }) }, audit: { event: 'oauth_app.deleted', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => {
        ctx.audit.resourceId = ctx.params.app_id;
        return { status: 200, body: { ...(await oauth.deleteApp(ctx.scope!, ctx.params.app_id, auditMeta(ctx))), deleted: true } };
      },
    }),
    route({
      method: 'GET', path: '/oauth/authorize', summary: 'Validate an authorization request (code + PKCE S256) for the signed-in user and park it for 600 s', tags: ['oauth'], auth: 'session',
      query: authorizeQuery, responses: { 200: pendingAuthorization },
      handler: async (ctx) => ({ status: 200, body: await oauth.startAuthorization(ctx.principal!, ctx.query) }),
    }),
    route({
      method: 'POST', path: '/oauth/authorize', summary: "The signed-in user's decision: redirect to the app with code and state", tags: ['oauth'], auth: 'session',
      body: authorizeDecisionBody, responses: { 302: z.object({ redirect_to: z.string() }) }, audit: { event: 'oauth.authorized', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => {
        const { redirectTo } = await oauth.decide(ctx.principal!, ctx.body.request_id, ctx.body.decision === 'approve', auditMeta(ctx));
        return { status: 302, headers: { Location: redirectTo }, body: { redirect_to: redirectTo } };
      },
    }),
    route({
      method: 'POST', path: '/oauth/token', summary: 'Token endpoint (form-encoded): authorization_code with code_verifier, refresh_token (rotated; reuse revokes the grant), or client_credentials', tags: ['oauth'], auth: 'public',
      body: tokenBody, bodyFormat: 'form', responses: { 200: tokenResponse }, audit: { event: 'oauth.token_issued', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => {
        const basic = basicClientCredentials(ctx.headers.authorization);
        return { status: 200, headers: { Pragma: 'no-cache' }, body: await oauth.token(ctx.body, basic, auditMeta(ctx)) };
      },
    }),
      route({
      method: 'POST', path: '/oauth/introspect', summary: 'Token introspection (RFC 7662, form-encoded): is a token this client holds active, and what it grants', tags: ['oauth'], auth: 'public',
      body: tokenLookupBody, bodyFormat: 'form', responses: { 200: introspectionResponse }, audit: { event: 'oauth.token_introspected', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => {
        const basic = basicClientCredentials(ctx.headers.authorization);
        return { status: 200, headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' }, body: await oauth.introspect(ctx.body, basic, auditMeta(ctx)) };
      },
    }),
    route({
      method: 'POST', path: '/oauth/revoke', summary: "Token revocation (RFC 7009, form-encoded): a refresh token ends its whole grant, an access token itself; 200 whatever the token was", tags: ['oauth'], auth: 'public',
      body: tokenLookupBody, bodyFormat: 'form', responses: { 200: z.object({}) }, audit: { event: 'oauth.token_revoked', resource: 'oauth_app', category: 'security' },
      handler: async (ctx) => {
        await oauth.revoke(ctx.body, basicClientCredentials(ctx.headers.authorization), auditMeta(ctx));
        return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: {} };
      },
    }),
  ];
}
