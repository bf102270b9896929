import { z } from 'zod';

const providerId = z.string().regex(/^sso_[0-9a-f]{16}$/, 'must be an SSO provider id (sso_…)');
export const ssoProviderParam = z.object({ provider_id: providerId });

export const createSsoProviderBody = z.object({
  name: z.string().trim().min(1).max(128),
  /** the issuer identifier exactly as its discovery document states it */
  issuer: z.url({ protocol: /^https?$/ }).max(512),
  client_id: z.string().trim().min(1).max(256),
  client_secret: z.string().min(1).max(1024).nullish(),
  scopes: z.string().trim().regex(/(^|\s)openid(\s|$)/, 'scopes must include openid').max(512).optional(),
  /** defaults to this API's own `/sso/oidc/{provider_id}/callback` */
  redirect_uri: z.url({ protocol: /^https?$/ }).max(1024).optional(),
  default_role: z.enum(['admin', 'member', 'viewer']).default('member'),
});

export const oidcCallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
  iss: z.string().max(512).optional(),
  session_state: z.string().max(512).optional(),
});

/** A SAML 2.0 identity provider: its entity id, single sign-on URL and signing certificate(s). */
export const createSamlProviderBody = z.object({
  name: z.string().trim().min(1).max(128),
  /** the IdP's entity id (the Issuer of its assertions) */
  idp_entity_id: z.string().trim().min(1).max(512),
  /** the IdP's SSO URL for the HTTP-Redirect binding */
  sso_url: z.url({ protocol: /^https$/ }).max(1024),
  /** PEM certificate(s) the IdP signs with, or the base64 DER of its metadata */
  idp_certificate: z.string().min(64).max(32_768),
  /** defaults to this API's `/sso/saml/{provider_id}/metadata` */
  sp_entity_id: z.string().trim().min(1).max(512).optional(),
  /** defaults to this API's `/sso/saml/{provider_id}/acs` */
  acs_url: z.url({ protocol: /^https?$/ }).max(1024).optional(),
  default_role: z.enum(['admin', 'member', 'viewer']).default('member'),
});

/** The IdP's HTTP-POST binding: a base64 `SAMLResponse` and an optional `RelayState`. */
export const samlAcsBody = z.object({
  SAMLResponse: z.string().min(1).max(512_000).regex(/^[A-Za-z0-9+/=\s]+$/, 'SAMLResponse must be base64'),
  RelayState: z.string().max(1024).optional(),
});
