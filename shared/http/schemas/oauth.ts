import { z } from 'zod';
import { OAUTH_SCOPES } from '../../services/oauth-service.ts';

/** Absolute http(s) URI without a fragment (RFC 6749 §3.1.2); plain http only for loopback development. */
const redirectUri = z
  .url({ protocol: /^https?$/ })
  .max(1024)
  .refine((u) => !u.includes('#'), 'redirect_uri must not contain a fragment')
  .refine((u) => u.startsWith('https://') || /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\//.test(u), 'redirect_uri must be https (http only for localhost)');

export const createOAuthAppBody = z.object({
  name: z.string().trim().min(1).max(128),
  client_type: z.enum(['confidential', 'public']).default('confidential'),
  redirect_uris: z.array(redirectUri).max(20).default([]),
  scopes: z.array(z.enum(OAUTH_SCOPES)).min(1).max(OAUTH_SCOPES.length).default(['memories:read', 'memories:write']),
});
export const oauthAppParam = z.object({ app_id: z.string().regex(/^oap_[0-9a-f]{16}$/, 'must be an OAuth app id (oap_…)') });

export const authorizeQuery = z.object({
  response_type: z.string().max(32),
  client_id: z.string().max(128),
  redirect_uri: z.string().max(1024),
  state: z.string().max(1024).optional(),
  scope: z.string().max(512).optional(),
  code_challenge: z.string().max(128),
  code_challenge_method: z.string().max(16),
});
export const authorizeDecisionBody = z.object({
  request_id: z.string().regex(/^oar_[A-Za-z0-9_-]{20,64}$/),
  decision: z.enum(['approve', 'deny']),
});

/** RFC 6749 token request, form-encoded; the grant decides which fields are needed. */
export const tokenBody = z.object({
  grant_type: z.string().max(64),
  code: z.string().max(512).optional(),
  redirect_uri: z.string().max(1024).optional(),
  client_id: z.string().max(128).optional(),
  client_secret: z.string().max(256).optional(),
  code_verifier: z.string().max(256).optional(),
  scope: z.string().max(512).optional(),
  refresh_token: z.string().max(256).optional(),
});
export const tokenResponse = z.object({
  access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number().int(), scope: z.string(),
  /** authorization-code and refresh grants: the next refresh token (each one is good for one use) */
  refresh_token: z.string().optional(),
});

/** RFC 7662 §2.1 / RFC 7009 §2.1 request, form-encoded; client authentication as at the token endpoint. */
export const tokenLookupBody = z.object({
  token: z.string().min(1).max(4096),
  token_type_hint: z.string().max(64).optional(),
  client_id: z.string().max(128).optional(),
  client_secret: z.string().max(256).optional(),
});
/** RFC 7662 §2.2: only `active` for a token that is not active (or not the caller's). */
export const introspectionResponse = z.object({
  active: z.boolean(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  sub: z.string().optional(),
  token_type: z.string().optional(),
  exp: z.number().int().optional(),
  iat: z.number().int().optional(),
  iss: z.string().optional(),
  aud: z.string().optional(),
  jti: z.string().optional(),
});
