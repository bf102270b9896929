import { z } from 'zod';
import { unauthorized } from '../../errors.ts';
import type { OidcService } from '../../services/oidc-service.ts';
import type { SamlService } from '../../services/saml-service.ts';
import { safeEqual } from '../../crypto/hashing.ts';
import { readCookies } from '../middleware/csrf.ts';
import { publicOrigin } from '../public-origin.ts';
import { createSamlProviderBody, createSsoProviderBody, oidcCallbackQuery, samlAcsBody, ssoProviderParam } from '../schemas/sso.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

/** Binds a login's `state` to the browser that started it (login CSRF), for the 600 s the state lives. */
const STATE_COOKIE = 'ms_oidc_state';
/**
 * Binds a SAML AuthnRequest id to the browser that started it. The IdP answers with a cross-site POST,
 * which only carries `SameSite=None` cookies (so `Secure` too).
 */
const SAML_COOKIE = 'ms_saml_request';

const oidcProvider = z.object({
  id: z.string(), kind: z.literal('oidc'), name: z.string(), issuer: z.string(), client_id: z.string(), has_client_secret: z.boolean(),
  scopes: z.string(), redirect_uri: z.string(), default_role: z.string(), login_url: z.string(), created_at: z.string(),
});
const samlProvider = z.object({
  id: z.string(), kind: z.literal('saml'), name: z.string(), idp_entity_id: z.string(), sso_url: z.string(), sp_entity_id: z.string(), acs_url: z.string(),
  metadata_url: z.string(), idp_certificate_fingerprints: z.array(z.string()), default_role: z.string(), login_url: z.string(), created_at: z.string(),
});
const ssoProvider = z.union([oidcProvider, samlProvider]);
const authResponse = z.object({
  user: z.object({ id: z.string(), email: z.string(), full_name: z.string().nullable(), role: z.string(), tenant_id: z.string() }),
  tokens: z.object({ access_token: z.string(), refresh_token: z.string(), token_type: z.literal('bearer'), expires_in: z.number() }),
  session: z.object({ id: z.string(), expires_at: z.string(), session_type: z.string() }),
  mfa_required: z.boolean(),
  mfa_setup_required: z.boolean(),
});

export function ssoRoutes(oidc: OidcService, saml: SamlService): RouteDefinition[] {
  return [
    route({
      method: 'POST', path: '/org/sso/providers', summary: 'Register an OIDC provider (client secret sealed with the tenant key)', tags: ['sso'], auth: 'session', minRole: 'admin',
      body: createSsoProviderBody, responses: { 201: oidcProvider }, audit: { event: 'sso_provider.created', resource: 'sso_provider', category: 'security' },
      handler: async (ctx) => {
        const redirectUri = ctx.body.redirect_uri ?? `${publicOrigin(ctx)}/sso/oidc/{provider_id}/callback`;
        return { status: 201, body: await oidc.createProvider(ctx.scope!, { ...ctx.body, redirect_uri: redirectUri }, auditMeta(ctx)) };
      },
    }),
    route({
      method: 'GET', path: '/org/sso/providers', summary: "List the organization's SSO providers", tags: ['sso'], auth: 'session', minRole: 'admin',
      responses: { 200: z.array(ssoProvider) },
      handler: async (ctx) => ({ status: 200, body: await oidc.listProviders(ctx.scope!) }),
    }),
    route({
      method: 'DELETE', path: '/org/sso/providers/{provider_id}', summary: 'Delete an SSO provider, OIDC or SAML (its account links go with it)', tags: ['sso'], auth: 'session', minRole: 'admin',
      params: ssoProviderParam, responses: { 200: z.union([oidcProvider.extend({ deleted: z.literal(true) }), samlProvider.extend({ deleted: z.literal(true) })]) }, audit: { event: 'sso_provider.deleted', resource: 'sso_provider', category: 'security' },
      handler: async (ctx) => {
        ctx.audit.resourceId = ctx.params.provider_id;
        return { status: 200, body: { ...(await oidc.deleteProvider(ctx.scope!, ctx.params.provider_id, auditMeta(ctx))), deleted: true } };
      },
    }),
    route({
      method: 'GET', path: '/sso/oidc/{provider_id}/login', summary: "Start an OIDC login: redirect to the issuer's authorization endpoint (state, nonce, PKCE S256)", tags: ['sso'], auth: 'public',
      params: ssoProviderParam, responses: { 302: null },
      handler: async (ctx) => {
        const { authorizationUrl, state } = await oidc.beginLogin(ctx.params.provider_id);
        return {
          status: 302,
          headers: { Location: authorizationUrl },
          cookies: [`${STATE_COOKIE}=${state}; Path=/sso/oidc/; HttpOnly; Secure; SameSite=Lax; Max-Age=600`],
        };
      },
    }),
    route({
      method: 'GET', path: '/sso/oidc/{provider_id}/callback', summary: 'Finish an OIDC login: verify the ID token, provision the account, answer like /auth/login', tags: ['sso'], auth: 'public',
      params: ssoProviderParam, query: oidcCallbackQuery, responses: { 200: authResponse },
      audit: { event: 'auth.sso_login', resource: 'session', category: 'auth' },
      handler: async (ctx) => {
        const bound = readCookies(ctx.headers.cookie)[STATE_COOKIE];
        if (!ctx.query.error && (!bound || !ctx.query.state || !safeEqual(bound, ctx.query.state))) {
          throw unauthorized('The login was not started by this browser', 'SSO_STATE_INVALID');
        }
        const result = await oidc.completeLogin(ctx.params.provider_id, ctx.query, auditMeta(ctx));
        return { status: 200, body: result, cookies: [`${STATE_COOKIE}=; Path=/sso/oidc/; HttpOnly; Secure; SameSite=Lax; Max-Age=0`] };
      },
    }),
      route({
      method: 'POST', path: '/org/sso/saml/providers', summary: 'Register a SAML 2.0 identity provider (entity id, SSO URL, signing certificate)', tags: ['sso'], auth: 'session', minRole: 'admin',
      body: createSamlProviderBody, responses: { 201: samlProvider }, audit: { event: 'sso_provider.created', resource: 'sso_provider', category: 'security' },
      handler: async (ctx) => {
        const origin = publicOrigin(ctx);
        const body = { ...ctx.body, sp_entity_id: ctx.body.sp_entity_id ?? `${origin}/sso/saml/{provider_id}/metadata`, acs_url: ctx.body.acs_url ?? `${origin}/sso/saml/{provider_id}/acs` };
        return { status: 201, body: await saml.createProvider(ctx.scope!, body, auditMeta(ctx)) };
      },
    }),
    route({
      method: 'GET', path: '/sso/saml/{provider_id}/login', summary: "Start a SAML login: redirect to the IdP's SSO URL with a signed-response-wanting AuthnRequest (HTTP-Redirect binding)", tags: ['sso'], auth: 'public',
      params: ssoProviderParam, responses: { 302: null },
      handler: async (ctx) => {
        const { redirectUrl, requestId } = await saml.beginLogin(ctx.params.provider_id);
        return { status: 302, headers: { Location: redirectUrl }, cookies: [`${SAML_COOKIE}=${requestId}; Path=/sso/saml/; HttpOnly; Secure; SameSite=None; Max-Age=600`] };
      },
    }),
    route({
      method: 'POST', path: '/sso/saml/{provider_id}/acs', summary: 'Assertion consumer service (HTTP-POST binding): verify the signed response, provision the account, answer like /auth/login', tags: ['sso'], auth: 'public',
      params: ssoProviderParam, body: samlAcsBody, bodyFormat: 'form', responses: { 200: authResponse },
      audit: { event: 'auth.sso_login', resource: 'session', category: 'auth' },
      handler: async (ctx) => {
        const bound = readCookies(ctx.headers.cookie)[SAML_COOKIE];
        const result = await saml.completeLogin(ctx.params.provider_id, ctx.body, bound, auditMeta(ctx));
        return { status: 200, body: result, cookies: [`${SAML_COOKIE}=; Path=/sso/saml/; HttpOnly; Secure; SameSite=None; Max-Age=0`] };
      },
    }),
    route({
      method: 'GET', path: '/sso/saml/{provider_id}/metadata', summary: 'SAML service-provider metadata (entity id, ACS URL) to register at the IdP', tags: ['sso'], auth: 'public',
      params: ssoProviderParam, responses: { 200: null },
      handler: async (ctx) => ({ status: 200, headers: { 'Content-Type': 'application/samlmetadata+xml; charset=utf-8' }, body: await saml.metadata(ctx.params.provider_id) }),
    }),
  ];
}
