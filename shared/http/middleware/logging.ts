import type { MiddlewareObj } from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import { stateOf, type ApiRequest } from '../types.ts';

/** The driver error behind an adapter's AppError (e.g. the pool timeout behind SERVICE_OVERLOADED), message and code only. */
function causeOf(error: Error): { code?: unknown; message: string } | undefined {
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  return cause && typeof cause === 'object' ? { code: cause.code, message: String(cause.message ?? '') } : undefined;
}

/**
 * One structured access-log line per request: request id, route template, tenant, status, latency.
 * Bodies, headers, keys and tokens are never logged.
 */
export const accessLog = (opts: { logger: Logger }): MiddlewareObj => {
  const { logger } = opts;
  const write = (request: ApiRequest) => {
    const state = stateOf(request);
    const status = request.response?.statusCode ?? 500;
    const entry = {
      requestId: state.requestId,
      method: request.event.httpMethod,
      route: state.route?.definition.path ?? null,
      status,
      latencyMs: Date.now() - state.startedAt,
      tenantId: state.principal?.tenantId ?? null,
      principal: state.principal?.kind ?? null,
    };
    if (status >= 500) logger.error('request', { ...entry, error: request.error ? { name: request.error.name, code: (request.error as { code?: unknown }).code, message: request.error.message, cause: causeOf(request.error), stack: request.error.stack } : undefined });
    else logger.info('request', entry);
  };
  return {
    before: (request) => {
      logger.appendKeys({ requestId: stateOf(request).requestId });
    },
    after: (request) => write(request as ApiRequest),
    onError: (request) => write(request as ApiRequest),
  };
};
