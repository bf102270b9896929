import type { MiddlewareObj } from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { writeAudit } from '../../services/audit.ts';
import { principalLabel } from '../../services/identity-service.ts';
import { header, stateOf, type ApiRequest } from '../types.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SECURITY_STATUSES = new Set([401, 403, 429]);

/**
 * Exactly one audit row per mutating request, and one per 401/403/429 of any method. Services that
 * write their audit row inside their business transaction mark it written; this middleware writes the
 * row for everything else (failures, rejected input, routes without a transaction of their own).
 */
export const audit = (opts: { db: Kysely<Database>; logger: Logger }): MiddlewareObj => {
  const record = async (request: ApiRequest) => {
    const state = stateOf(request);
    const status = request.response?.statusCode ?? 500;
    const method = request.event.httpMethod;
    if (state.audit.written) return;
    if (!MUTATING.has(method) && !SECURITY_STATUSES.has(status)) return;
    if (method === 'OPTIONS') return;
    const route = state.route?.definition;
    const principal = state.principal ?? null;
    const ok = status < 400;
    const eventType = ok ? (route?.audit?.event ?? `${(route?.path ?? 'unknown').split('/').filter(Boolean)[0] ?? 'api'}.${method.toLowerCase()}`)
      : status === 401 ? 'auth.unauthorized' : status === 403 ? 'auth.forbidden' : status === 429 ? 'api.rate_limited' : 'api.request_failed';
    try {
      await writeAudit(opts.db, {
        tenantId: principal?.tenantId ?? null,
        userId: state.endUser?.userId ?? principal?.accountId ?? null,
        principal: principal ? principalLabel(principal) : null,
        eventType,
        category: SECURITY_STATUSES.has(status) ? 'security' : (route?.audit?.category as 'data') ?? 'api',
        resourceType: route?.audit?.resource ?? null,
        resourceId: state.audit.resourceId,
        action: method.toLowerCase(),
        status: ok ? 'success' : 'failure',
        statusCode: status,
        ipAddress: request.event.requestContext?.identity?.sourceIp ?? null,
        userAgent: header(request.event, 'user-agent') ?? null,
        requestId: state.requestId,
        payload: { route: route?.path ?? request.event.path.slice(0, 200), ...state.audit.payload },
      });
      state.audit.written = true;
    } catch (err) {
      // The audit store is the database: if it is down the request already failed with 503.
      opts.logger.warn('audit write failed', { requestId: state.requestId, error: (err as Error).message });
    }
  };
  return {
    after: (request) => record(request as ApiRequest),
    onError: (request) => record(request as ApiRequest),
  };
};
