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

/**
 * Authentication and tenant resolution. The principal comes from the credential only: `X-API-Key`
 * (or a Bearer value that is an `ms_` key — clients send both), a Bearer JWT, or the session cookie.
 * The tenant is the principal's; `X-Tenant-ID`, when sent, must name the same tenant.
 */
export const tenantResolver = (opts: { router: Router; identity: IdentityService }): MiddlewareObj => ({
  before: async (request) => {
    const req = request as ApiRequest;
    const route = routeOf(req, opts.router);
    const state = stateOf(req);
    state.principal = null;
    if (!route) return; // the dispatcher answers 404/405

    const principal = await authenticate(req, opts.identity);
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
    if (principal.kind === 'api_key' && scopes?.length) {
      const missing = scopes.filter((s) => !principal.scopes.includes(s));
      if (missing.length) throw new AppError('INSUFFICIENT_SCOPE', 403, `Insufficient scope. Missing: ${missing.join(', ')}`);
    }
    if (principal.kind === 'session' && minRole && !roleAtLeast(principal.role, minRole)) {
      throw forbidden(`Role ${minRole} or higher required`, 'INSUFFICIENT_ROLE');
    }
    state.principal = principal;
  },
});

export async function authenticate(req: ApiRequest, identity: IdentityService): Promise<Principal | undefined> {
  const state = stateOf(req);
  const apiKey = header(req.event, 'x-api-key')?.trim();
  const authorization = header(req.event, 'authorization')?.trim();
  const bearer = authorization && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined;
  if (authorization && !bearer) throw unauthorized('Unsupported Authorization scheme; use Bearer', 'UNAUTHORIZED');
  if (apiKey) {
    // A bearer value that is the same key, or not a JWT, is ignored when X-API-Key is present.
    return identity.principalFromApiKey(apiKey);
  }
  if (bearer) {
    if (bearer.startsWith('ms_')) return identity.principalFromApiKey(bearer);
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
