import { describe, expect, it } from 'vitest';
import { AppError } from '#shared/errors.ts';
import { cors } from '#shared/http/middleware/cors.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { apiEvent } from '../../../support/events.ts';
import { handlerWith, silentLogger, type Respond } from '../middy-harness.ts';

const APP = 'https://app.example.com';

function counted(respond?: Respond) {
  const calls = { count: 0 };
  const handler = (origins: string[]) =>
    handlerWith([cors({ origins }), errorHandler({ logger: silentLogger() })], (request) => {
      calls.count += 1;
      return respond ? respond(request) : { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' };
    });
  return { calls, handler };
}

const preflight = (origin = APP) =>
  apiEvent({
    method: 'OPTIONS', path: '/memory/add',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-api-key,x-end-user-id' },
  });

describe('CORS middleware', () => {
  it('decorates the preflight answer (204 from the dispatcher) with the allow headers', async () => {
    const { calls, handler } = counted(() => ({ statusCode: 204, headers: {}, body: '' }));
    const res = await handler(['*'])(preflight());
    expect(calls.count).toBe(1);
    expect(res.statusCode).toBe(204);
    expect(res.headers?.['Access-Control-Allow-Origin']).toBe('*');
    expect(res.headers?.['Access-Control-Allow-Methods']).toBe('GET,POST,PUT,PATCH,DELETE,OPTIONS');
    const allowed = String(res.headers?.['Access-Control-Allow-Headers']).toLowerCase().split(',');
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'authorization', 'x-api-key', 'x-end-user-id', 'x-project-id', 'x-csrf-token']));
    expect(res.headers?.['Access-Control-Max-Age']).toBe('600');
  });

  it('sets Access-Control-Allow-Origin and exposes the rate-limit and request-id headers on a normal response', async () => {
    const { calls, handler } = counted();
    const res = await handler(['*'])(apiEvent({ method: 'POST', path: '/memory/add', headers: { Origin: APP }, body: { text: 'hello world' } }));
    expect(calls.count).toBe(1);
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['Access-Control-Allow-Origin']).toBe('*');
    expect(String(res.headers?.['Access-Control-Expose-Headers'])).toContain('X-Request-ID');
    expect(String(res.headers?.['Access-Control-Expose-Headers'])).toContain('Retry-After');
    expect(res.headers).not.toHaveProperty('Access-Control-Allow-Credentials');
  });

  it('sets Access-Control-Allow-Origin on an error response too, so the browser can read the envelope', async () => {
    const { handler } = counted(() => {
      throw new AppError('RATE_LIMIT_EXCEEDED', 429, 'Rate limit exceeded', undefined, { 'Retry-After': '1' });
    });
    const res = await handler(['*'])(apiEvent({ method: 'GET', path: '/memory/export', headers: { Origin: APP } }));
    expect(res.statusCode).toBe(429);
    expect(res.headers?.['Access-Control-Allow-Origin']).toBe('*');
    expect(res.headers?.['Retry-After']).toBe('1');
  });

  it('echoes an allowed origin with credentials when origins are listed, and varies on Origin', async () => {
    const { handler } = counted();
    const res = await handler([APP, 'https://admin.example.com'])(apiEvent({ method: 'GET', path: '/auth/me', headers: { Origin: APP } }));
    expect(res.headers?.['Access-Control-Allow-Origin']).toBe(APP);
    expect(res.headers?.['Access-Control-Allow-Credentials']).toBe('true');
    expect(String(res.headers?.Vary)).toContain('Origin');
  });

  it('grants nothing to an origin that is not listed', async () => {
    const { handler } = counted();
    const res = await handler([APP])(apiEvent({ method: 'GET', path: '/auth/me', headers: { Origin: 'https://evil.example.net' } }));
    expect(res.headers).not.toHaveProperty('Access-Control-Allow-Origin');
    const pre = await handler([APP])(preflight('https://evil.example.net'));
    expect(pre.headers).not.toHaveProperty('Access-Control-Allow-Origin');
  });
});
