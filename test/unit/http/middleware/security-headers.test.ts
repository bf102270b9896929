import type { APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { AppError } from '#shared/errors.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { securityHeaders } from '#shared/http/middleware/security-headers.ts';
import { apiEvent } from '../../../support/events.ts';
import { handlerWith, silentLogger } from '../middy-harness.ts';

const event = apiEvent({ method: 'POST', path: '/memory/query', body: { query: 'coffee order' } });
const succeeding = handlerWith([securityHeaders(), errorHandler({ logger: silentLogger() })]);
const failing = handlerWith([securityHeaders(), errorHandler({ logger: silentLogger() })], () => {
  throw new AppError('UNAUTHORIZED', 401, 'Invalid or missing credentials');
});
const crashing = handlerWith([securityHeaders(), errorHandler({ logger: silentLogger() })], () => {
  throw new TypeError("Cannot read properties of undefined (reading 'id')");
});

function expectProtected(res: APIGatewayProxyResult) {
  expect(res.headers).toMatchObject({
    'X-Content-Type-Options': 'nosniff',
    'Strict-Transport-Security': expect.stringMatching(/^max-age=\d{7,}; includeSubDomains/),
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
  });
  for (const [name, value] of Object.entries(res.headers ?? {})) {
    expect(value, name).toBeDefined();
    expect(String(value), name).not.toBe('');
    expect(String(value), name).not.toBe('undefined');
  }
  expect(Object.keys(res.headers ?? {})).not.toContain('Server');
  expect(Object.keys(res.headers ?? {})).not.toContain('X-Powered-By');
}

describe('security headers middleware', () => {
  it('adds nosniff, HSTS and no-store to a successful response', async () => {
    const res = await succeeding(event);
    expect(res.statusCode).toBe(200);
    expectProtected(res);
  });

  it('adds the same headers to a rendered 4xx error', async () => {
    const res = await failing(event);
    expect(res.statusCode).toBe(401);
    expectProtected(res);
  });

  it('adds the same headers to a rendered 500', async () => {
    const res = await crashing(event);
    expect(res.statusCode).toBe(500);
    expectProtected(res);
  });

  it('keeps a Cache-Control the route chose itself', async () => {
    const cached = handlerWith([securityHeaders()], () => ({ statusCode: 200, headers: { 'Cache-Control': 'public, max-age=300' }, body: '{}' }));
    expect((await cached(apiEvent({ method: 'GET', path: '/openapi.json' }))).headers?.['Cache-Control']).toBe('public, max-age=300');
  });

  it('normalises a response without headers instead of failing', async () => {
    const bare = handlerWith([securityHeaders()], () => ({ statusCode: 204, body: '' }));
    const res = await bare(apiEvent({ method: 'DELETE', path: '/memory/12' }));
    expect(res.statusCode).toBe(204);
    expectProtected(res);
  });
});
