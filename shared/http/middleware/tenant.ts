import type { MiddlewareObj } from '@middy/core';
import { AppError, badRequest, forbidden, unauthorized } from '../../errors.ts';
import type { IdentityService } from '../../services/identity-service.ts';
import { roleAtLeast } from '../../services/identity-service.ts';
import type { Principal } from '../../services/scope.ts';
import { looksLikeJwt } from '../../services/tokens.ts';
import type { Router } from '../router.ts';
import { routeOf } from '../route-of.ts';
import { header, stateOf, type ApiRequest } from '../types.ts';
import { readCookies, SESSION_COOKIE } from './csrf.ts';

const TENANT_ID_FORMAT = /^[A-Za-z0-9_-]{1,64}$/;

/** Headers that decide who is calling and for whom: each may arrive once (or repeated with the same value). */
const SINGLE_VALUED = ['x-api-key', 'authorization', 'x-tenant-id', 'x-project-id', 'x-end-user-id'] as const;

/**
 * Refuses a request that repeats a credential or tenancy header with different values. API Gateway puts
 * the last value in `headers`, the local server the first, proxies may pick either: acting on one of two
 * keys (or end users) would make the answer depend on who parsed the request. RFC 6750 §3.1 answers such
 * a request with 400 `invalid_request`.
 */
export function assertUnambiguousHeaders(event: ApiRequest['event']): void {
  for (const name of SINGLE_VALUED) {
    const values = new Set<string>();
    for (const [k, v] of Object.entries(event.multiValueHeaders ?? {})) if (k.toLowerCase() === name) for (const x of v ?? []) values.add(String(x).trim());
    for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name && v !== undefined && v !== null) values.add(String(v).trim());
    if (values.size > 1) throw badRequest('AMBIGUOUS_CREDENTIALS', `${name} was sent more than once with different values; send it once`);
  }
}

/**
 * Authentication and tenant resolution. The principal comes from the credential only: `X-API-Key`
 * (or a Bearer value that is an `ms_` key — clients send both), a Bearer JWT, or the session cookie.
 * The tenant is the principal's; `X-Tenant-ID`, when sent, must name the same tenant.
 */
/**
 * A bearer credential other than a session JWT or an `ms_` key — an OAuth access token, a SCIM
 * provisioning token — recognised by its shape and resolved by the service that issued it.
 */
export interface BearerResolver {
  accepts(token: string): boolean;
  resolve(token: string): Promise<Principal>;
}

export const tenantResolver = (opts: { router: Router; identity: IdentityService; bearerResolvers?: readonly BearerResolver[] }): MiddlewareObj => ({
  before: async (request) => {
    const req = request as ApiRequest;
    const route = routeOf(req, opts.router);
    const state = stateOf(req);
    state.principal = null;
    if (!route) return; // the dispatcher answers 404/405

    assertUnambiguousHeaders(req.event);
    const principal = await authenticate(req, opts.identity, opts.bearerResolvers);
    const tenantHeader = header(req.event, 'x-tenant-id')?.trim();
    if (tenantHeader && !TENANT_ID_FORMAT.test(tenantHeader)) {
      throw badRequest('INVALID_TENANT_ID_FORMAT', 'X-Tenant-ID may contain only letters, digits, hyphens and underscores');
    }
    const { auth, scopes, minRole } = route.definition;
    if (auth === 'public') {
      state.principal = principal ?? null;
      return;
    }
    if (!principal) throw unauthorized('Authentication required: send X-API-Key or Authorization: Bearer', 'UNAUTHORIZED');
    if (tenantHeader && tenantHeader !== principal.tenantId && tenantHeader !== 'default') {
      throw forbidden('X-Tenant-ID does not match the credential', 'TENANT_MISMATCH');
    }
    if (auth === 'session' && principal.kind !== 'session') throw forbidden('This route needs a signed-in user session', 'SESSION_REQUIRED');
    if (auth === 'platform-admin' && !principal.platformAdmin) throw forbidden('Platform administrator role required', 'FORBIDDEN');
    // SCIM provisioning tokens open /scim/v2 and nothing else; nothing else opens /scim/v2.
    if ((auth === 'scim') !== (principal.kind === 'scim')) throw forbidden(auth === 'scim' ? 'A SCIM provisioning token is required' : 'SCIM tokens are valid only under /scim/v2', 'FORBIDDEN');
    if ((principal.kind === 'api_key' || principal.kind === 'oauth') && scopes?.length) {
      const missing = scopes.filter((s) => !principal.scopes.includes(s));
      if (missing.length) throw new AppError('INSUFFICIENT_SCOPE', 403, `Insufficient scope. Missing: ${missing.join(', ')}`);
    }
    if (principal.kind === 'session' && minRole && !roleAtLeast(principal.role, minRole)) {
      throw forbidden(`Role ${minRole} or higher required`, 'INSUFFICIENT_ROLE');
    }
    state.principal = principal;
  },
});

export async function authenticate(req: ApiRequest, identity: IdentityService, bearerResolvers: readonly BearerResolver[] = []): Promise<Principal | undefined> {
  const state = stateOf(req);
  const apiKey = header(req.event, 'x-api-key')?.trim();
  const authorization = header(req.event, 'authorization')?.trim();
  const bearer = authorization && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined;
  // Basic is read only by the OAuth token endpoint (client authentication, RFC 6749 §2.3.1).
  if (authorization && !bearer && !/^basic\s+/i.test(authorization)) throw unauthorized('Unsupported Authorization scheme; use Bearer', 'UNAUTHORIZED');
  if (apiKey) {
    // Clients often send the key in both headers; two different keys are two callers, not one.
    if (bearer?.startsWith('ms_') && bearer !== apiKey) throw badRequest('AMBIGUOUS_CREDENTIALS', 'X-API-Key and Authorization carry different API keys; send one');
    // A bearer value that is the same key, or not a key, is ignored when X-API-Key is present.
    return identity.principalFromApiKey(apiKey);
  }
  if (bearer) {
    if (bearer.startsWith('ms_')) return identity.principalFromApiKey(bearer);
    const resolver = bearerResolvers.find((r) => r.accepts(bearer));
    if (resolver) return resolver.resolve(bearer);
    if (!looksLikeJwt(bearer)) throw unauthorized('Invalid token', 'INVALID_TOKEN');
    const { principal, sessionId } = await identity.principalFromAccessToken(bearer);
    state.sessionId = sessionId;
    return principal;
  }
  const cookie = readCookies(header(req.event, 'cookie'))[SESSION_COOKIE];
  if (cookie && looksLikeJwt(cookie)) {
    const { principal, sessionId } = await identity.principalFromAccessToken(cookie);
    state.sessionId = sessionId;
    return principal;
  }
  return undefined;
}
