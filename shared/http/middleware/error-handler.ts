import type { MiddlewareObj } from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import { ZodError } from 'zod';
import { AppError, DatabaseUnavailableError } from '../../errors.ts';
import { renderProtocolError } from '../protocol-errors.ts';
import { stateOf, type ApiRequest } from '../types.ts';
import { canonicalEnvelopeOnly } from '../v2-errors.ts';

/** Driver errors that mean "the database is unreachable", rendered as a clean 503. */
const DB_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

export function isDatabaseDown(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: string }).code;
    const message = String((e as { message?: string }).message ?? '');
    if (code && DB_DOWN_CODES.has(code)) return true;
    if (/Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|PGlite is closed|connect ECONNREFUSED/i.test(message)) return true;
    if (e instanceof AggregateError && e.errors.some((x) => isDatabaseDown(x))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function zodDetails(err: ZodError) {
  return err.issues.map((i) => ({ loc: i.path.map(String), msg: i.message, type: i.code }));
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const message = first ? `${first.path.join('.') || 'body'}: ${first.message}` : 'Invalid request';
    return new AppError('VALIDATION_ERROR', 422, message, zodDetails(err));
  }
  if (isDatabaseDown(err)) return new DatabaseUnavailableError(err);
  return new AppError('INTERNAL_ERROR', 500, 'Internal server error');
}

/** The contract's envelope, plus a FastAPI-style `detail` that integrations read. */
export function renderError(appError: AppError, requestId: string) {
  const strict = appError.extra?.strict === true;
  const body = strict
    ? { detail: { error: 'limit_exceeded', message: appError.message }, error: { code: appError.code, message: appError.message }, request_id: requestId }
    : {
        error: {
          code: appError.code,
          message: appError.message,
          ...(appError.status === 422 ? { details: appError.details ?? [] } : {}),
          ...Object.fromEntries(Object.entries(appError.extra ?? {}).filter(([k]) => k !== 'strict')),
        },
        detail: appError.message,
        request_id: requestId,
      };
  return {
    statusCode: appError.status,
    // The header travels with the body's request_id even for answers rendered outside the chain.
    headers: { 'Content-Type': 'application/json', 'X-Request-ID': requestId, ...(appError.headers ?? {}) },
    body: JSON.stringify(body),
  };
}

/**
 * Renders every error exactly once into the envelope. Registered innermost so its onError runs first
 * and the outer middlewares (request id, CORS, security headers) decorate the rendered response.
 */
export const errorHandler = (opts: { logger: Logger }): MiddlewareObj => ({
  onError: (request) => {
    const req = request as ApiRequest;
    const appError = toAppError(req.error);
    if (appError.status >= 500 && appError.code === 'INTERNAL_ERROR') {
      opts.logger.error('unhandled error', { requestId: stateOf(req).requestId, error: req.error });
    }
    req.response = canonicalEnvelopeOnly(req.event.path ?? '', renderProtocolError(req.event.path ?? '', appError, stateOf(req).requestId) ?? renderError(appError, stateOf(req).requestId));
  },
});
