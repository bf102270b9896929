import type { MiddlewareObj } from '@middy/core';
import { AppError, badRequest, forbidden } from '../../errors.ts';
import type { IdentityService } from '../../services/identity-service.ts';
import type { Router } from '../router.ts';
import { bodyOf } from '../request-body.ts';
import { routeInput } from '../route-input.ts';
import { routeOf } from '../route-of.ts';
import { header, stateOf, type ApiRequest } from '../types.ts';

const PROJECT_ID_FORMAT = /^[A-Za-z0-9_-]{1,64}$/;
const END_USER_ID_FORMAT = /^[^\u0000-\u001f]{1,256}$/;

/**
 * Project and end-user resolution. The project comes from `X-Project-ID` (checked against the
 * tenant) or a project-locked key; when neither is present memories are org-wide (project null),
 * as real clients omit the header. The end user comes from `X-End-User-ID` / body `end_user_id`
 * for keys, the signed-in account for sessions, and the body/path `user_id` on the v1 plane.
 */
export const projectResolver = (opts: { router: Router; identity: IdentityService; maxBodyBytes: number }): MiddlewareObj => ({
  before: async (request) => {
    const req = request as ApiRequest;
    const route = routeOf(req, opts.router);
    const state = stateOf(req);
    const principal = state.principal;
    if (!route || !principal) return;

    const rawHeader = header(req.event, 'x-project-id')?.trim();
    let projectId: string | null = null;
    if (rawHeader) {
      if (!PROJECT_ID_FORMAT.test(rawHeader)) throw badRequest('INVALID_PROJECT_ID', 'X-Project-ID has an invalid format');
      if (principal.projectLock && principal.projectLock !== rawHeader) throw forbidden('This API key is locked to another project', 'PROJECT_FORBIDDEN');
      await opts.identity.getProjectOrThrow(principal, rawHeader);
      projectId = rawHeader;
    } else if (principal.projectLock) {
      projectId = principal.projectLock;
    }
    state.scope = { tenantId: principal.tenantId, projectId, principal };

    const mode = route.definition.endUser;
    if (!mode) return;
    let endUserId: string | undefined;
    if (principal.kind === 'session') {
      endUserId = principal.accountPublicId ?? undefined;
    } else if (mode === 'v1') {
      endUserId = v1UserId(req, opts.maxBodyBytes, route.params);
      const tenantClaim = v1TenantId(req, opts.maxBodyBytes, route.params);
      if (tenantClaim !== undefined && tenantClaim !== principal.tenantId && tenantClaim !== 'default') {
        throw forbidden('tenant_id does not belong to this API key', 'TENANT_MISMATCH');
      }
      endUserId ??= header(req.event, 'x-end-user-id')?.trim() || undefined;
    } else {
      endUserId = header(req.event, 'x-end-user-id')?.trim() || bodyEndUser(req, opts.maxBodyBytes);
    }
    if (!endUserId) {
      throw new AppError('MISSING_END_USER_ID', 400, 'X-End-User-ID header (or end_user_id) is required for API key requests');
    }
    if (!END_USER_ID_FORMAT.test(endUserId)) throw badRequest('INVALID_END_USER_ID', 'end user id must be 1-256 printable characters');
    // Validate before the end user is created on first sight: a rejected request leaves no row behind.
    routeInput(req, route, opts.maxBodyBytes);
    const userId = await opts.identity.resolveEndUser(principal.tenantId, endUserId);
    state.endUser = { ...state.scope, userId, endUserExternalId: endUserId, environment: principal.environment };
  },
});

function bodyField(req: ApiRequest, maxBytes: number, field: string): unknown {
  if (req.event.httpMethod === 'GET') return undefined;
  const body = bodyOf(req, maxBytes);
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[field] : undefined;
}

function bodyEndUser(req: ApiRequest, maxBytes: number): string | undefined {
  const v = bodyField(req, maxBytes, 'end_user_id');
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

function v1UserId(req: ApiRequest, maxBytes: number, params: Record<string, string>): string | undefined {
  const v = params.user_id ?? bodyField(req, maxBytes, 'user_id');
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

function v1TenantId(req: ApiRequest, maxBytes: number, params: Record<string, string>): string | undefined {
  const v = params.tenant_id ?? bodyField(req, maxBytes, 'tenant_id');
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}
