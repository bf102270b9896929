/**
 * One error type for the whole application. Services and middlewares throw these; the error
 * middleware renders them once into the contract's envelope. Anything else becomes a 500 that
 * exposes nothing but the request id.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
    /** extra top-level fields merged into `error` (e.g. retry_after) */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, message: string) => new AppError(code, 400, message);
export const unauthorized = (message = 'Invalid or missing credentials', code = 'UNAUTHORIZED') =>
  new AppError(code, 401, message);
export const forbidden = (message = 'Forbidden', code = 'FORBIDDEN') => new AppError(code, 403, message);
export const notFound = (message = 'Not found') => new AppError('NOT_FOUND', 404, message);
export const conflict = (message: string) => new AppError('CONFLICT', 409, message);
export const validationError = (message: string, details: unknown[] = []) =>
  new AppError('VALIDATION_ERROR', 422, message, details);
export const serviceUnavailable = (message = 'Service temporarily unavailable') =>
  new AppError('SERVICE_UNAVAILABLE', 503, message, undefined, { 'Retry-After': '1' });

/** Raised by adapters when the database cannot be reached; rendered as a clean 503. */
export class DatabaseUnavailableError extends AppError {
  constructor(cause?: unknown) {
    super('SERVICE_UNAVAILABLE', 503, 'Database unavailable', undefined, { 'Retry-After': '1' });
    this.name = 'DatabaseUnavailableError';
    this.cause = cause;
  }
}

/**
 * Raised by the database adapter when every pooled connection stayed busy for the whole wait budget
 * (or too many requests are already waiting): backpressure, not an outage. A 503 with its own code and
 * `Retry-After`, so clients back off and operators can tell it from `SERVICE_UNAVAILABLE`.
 */
export class DatabaseOverloadedError extends AppError {
  constructor(readonly reason: string, cause?: unknown) {
    super('SERVICE_OVERLOADED', 503, 'Server busy: every database connection is in use; retry shortly', undefined, { 'Retry-After': '2' }, { retry_after: 2 });
    this.name = 'DatabaseOverloadedError';
    this.cause = cause;
  }
}

/** Raised by the vector store or embedder; callers degrade to the lexical path. */
export class DependencyError extends Error {
  constructor(
    readonly dependency: 'embedder' | 'vector-store' | 'queue' | 'cache' | 'object-store' | 'key-ring' | 'summarizer',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DependencyError';
  }
}
