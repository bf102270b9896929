import { createServer } from 'node:net';
import pg from 'pg';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { AppError, DatabaseUnavailableError, validationError } from '#shared/errors.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { requestId } from '#shared/http/middleware/request-id.ts';
import { apiEvent } from '../../../support/events.ts';
import { bodyJson, handlerWith, silentLogger } from '../middy-harness.ts';

/** A real middy handler whose route throws `error`, rendered by the error handler. */
const throwing = (error: unknown) =>
  handlerWith([requestId(), errorHandler({ logger: silentLogger() })], () => {
    throw error;
  });

const REQUEST_ID = 'err-test-request-0001';
const call = (error: unknown) => throwing(error)(apiEvent({ method: 'POST', path: '/memory/add', headers: { 'X-Request-ID': REQUEST_ID }, body: { text: 'hello there' } }));

/** The error pg raises when nothing listens on the database port. */
async function connectionRefused(): Promise<Error> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'memorysync', connectionTimeoutMillis: 2000 });
  return client.connect().then(
    () => {
      throw new Error(`something answered on port ${port}`);
    },
    (err: Error) => err,
  );
}

describe('error handler middleware', () => {
  it('renders an AppError as the envelope with code, message, request_id and a detail string', async () => {
    const res = await call(new AppError('PROJECT_NOT_FOUND', 404, 'Project not found'));
    expect(res.statusCode).toBe(404);
    expect(res.headers?.['Content-Type']).toBe('application/json');
    expect(bodyJson(res)).toEqual({ error: { code: 'PROJECT_NOT_FOUND', message: 'Project not found' }, detail: 'Project not found', request_id: REQUEST_ID });
  });

  it('keeps the headers an AppError carries', async () => {
    const res = await call(new AppError('METHOD_NOT_ALLOWED', 405, 'Method PUT is not allowed on /memory/add', undefined, { Allow: 'POST' }));
    expect(res.headers?.Allow).toBe('POST');
  });

  it('includes details on a 422 and only on a 422', async () => {
    const details = [{ loc: ['body', 'text'], msg: 'text must be at least 3 characters', type: 'custom' }];
    const invalid = bodyJson(await call(validationError('text: text must be at least 3 characters', details)));
    expect(invalid.error).toEqual({ code: 'VALIDATION_ERROR', message: 'text: text must be at least 3 characters', details });
    const empty = bodyJson(await call(new AppError('VALIDATION_ERROR', 422, 'JSON nesting deeper than 32 levels')));
    expect(empty.error.details).toEqual([]);
    const conflict = bodyJson(await call(new AppError('CONFLICT', 409, 'Duplicate', [{ loc: ['x'] }])));
    expect(conflict.error).not.toHaveProperty('details');
  });

  it('maps a ZodError to 422 VALIDATION_ERROR with loc and msg per issue', async () => {
    const schema = z.object({ query: z.string().min(1), k: z.number().int().max(100) });
    const parsed = schema.safeParse({ k: 500 });
    expect(parsed.success).toBe(false);
    const res = await call(parsed.error);
    expect(res.statusCode).toBe(422);
    const body = bodyJson(res);
    expect(body.error.code).toBe('VALIDATION_ERROR');
    expect(body.error.message).toMatch(/^query: /);
    expect(body.error.details).toEqual([
      { loc: ['query'], msg: expect.any(String), type: 'invalid_type' },
      { loc: ['k'], msg: expect.any(String), type: 'too_big' },
    ]);
    expect(body.request_id).toBe(REQUEST_ID);
  });

  it('answers an unknown Error with 500 INTERNAL_ERROR that leaks neither message nor stack', async () => {
    const secret = 'relation "memories_tenant_secret" does not exist at character 42';
    const error = new Error(secret);
    const res = await call(error);
    expect(res.statusCode).toBe(500);
    expect(bodyJson(res)).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'Internal server error' }, detail: 'Internal server error', request_id: REQUEST_ID });
    expect(res.body).not.toContain('memories_tenant_secret');
    expect(res.body).not.toContain(error.stack!.split('\n')[1].trim());
  });

  it('answers a thrown non-Error value with 500 INTERNAL_ERROR', async () => {
    const res = await call('plain string failure');
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('plain string failure');
  });

  it('maps a refused database connection (ECONNREFUSED) to 503 with Retry-After, revealing no address', async () => {
    const refused = await connectionRefused();
    expect((refused as Error & { code?: string }).code).toBe('ECONNREFUSED');
    const res = await call(refused);
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['Retry-After']).toBe('1');
    expect(bodyJson(res).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(res.body).not.toContain('127.0.0.1');
  });

  it('maps a server-side connection termination (57P01), also when wrapped as a cause, to 503', async () => {
    const terminated = Object.assign(new pg.DatabaseError('terminating connection due to administrator command', 116, 'error'), { code: '57P01', severity: 'FATAL' });
    for (const error of [terminated, new Error('insert into memories failed', { cause: terminated })]) {
      const res = await call(error);
      expect(res.statusCode).toBe(503);
      expect(res.headers?.['Retry-After']).toBe('1');
      expect(res.body).not.toContain('administrator command');
    }
  });

  it('does not mistake an ordinary SQL error for an outage', async () => {
    const uniqueViolation = Object.assign(new pg.DatabaseError('duplicate key value violates unique constraint', 120, 'error'), { code: '23505' });
    expect((await call(uniqueViolation)).statusCode).toBe(500);
  });

  it('renders DatabaseUnavailableError from an adapter as 503', async () => {
    const res = await call(new DatabaseUnavailableError(new Error('PGlite is closed')));
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['Retry-After']).toBe('1');
  });

  it('renders the strict quota 429 with detail.error limit_exceeded and no internal flag', async () => {
    const message = 'You have reached your monthly limit of 100 adds. Upgrade your plan or wait for the next period.';
    const res = await call(new AppError('limit_exceeded', 429, message, undefined, undefined, { strict: true }));
    expect(res.statusCode).toBe(429);
    expect(bodyJson(res)).toEqual({ detail: { error: 'limit_exceeded', message }, error: { code: 'limit_exceeded', message }, request_id: REQUEST_ID });
  });

  it('merges extra fields such as retry_after into the error object', async () => {
    const res = await call(new AppError('RATE_LIMIT_EXCEEDED', 429, 'Rate limit exceeded (per-minute). Try again in 30 seconds.', undefined, { 'Retry-After': '30' }, { retry_after: 30 }));
    expect(res.headers?.['Retry-After']).toBe('30');
    expect(bodyJson(res).error).toEqual({ code: 'RATE_LIMIT_EXCEEDED', message: 'Rate limit exceeded (per-minute). Try again in 30 seconds.', retry_after: 30 });
  });
});
