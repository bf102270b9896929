import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { unauthorized } from '#shared/errors.ts';
import { createDispatcher } from '#shared/http/dispatch.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { accessLog } from '#shared/http/middleware/logging.ts';
import { requestId } from '#shared/http/middleware/request-id.ts';
import { Router } from '#shared/http/router.ts';
import type { RouteDefinition } from '#shared/http/types.ts';
import { apiEvent } from '../../../support/events.ts';
import { given, handlerWith } from '../middy-harness.ts';

const MEMORY_TEXT = 'My online banking PIN is 4921 and the recovery phrase is purple-elephant-42';
const API_KEY = 'ms_live_Q7wErTy9uIoP1aSdFgHjKlZxCvBnM3';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfYWJjIn0.S3cr3tS1gnatur3Valu3';
const secretHeaders = { 'X-API-Key': API_KEY, Authorization: `Bearer ${BEARER}`, 'X-End-User-ID': 'alice', Cookie: `ms_session=${BEARER}` };

const routes: RouteDefinition[] = [
  { method: 'POST', path: '/memory/add', summary: 'add', auth: 'any', handler: async () => ({ status: 201, body: { id: 1, text: MEMORY_TEXT } }) },
  { method: 'POST', path: '/memory/query', summary: 'query', auth: 'any', handler: async () => { throw unauthorized('Invalid API key', 'INVALID_API_KEY'); } },
  {
    method: 'GET', path: '/memory/{id}', summary: 'get', auth: 'any',
    handler: async () => {
      const row = undefined as unknown as { id: number };
      return { status: 200, body: { id: row.id } };
    },
  },
];
const router = new Router(routes);

/** Everything the logger prints, as parsed JSON lines and as the raw text. */
function captureOutput() {
  const chunks: string[] = [];
  const grab = (chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(grab as typeof process.stdout.write);
  vi.spyOn(process.stderr, 'write').mockImplementation(grab as typeof process.stderr.write);
  return {
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, any>),
  };
}

describe('access log middleware', () => {
  let output: ReturnType<typeof captureOutput>;
  let api: ReturnType<typeof handlerWith>;

  beforeEach(() => {
    output = captureOutput();
    // Created after the capture starts: Powertools binds its Console to the process streams at construction.
    const logger = new Logger({ serviceName: 'memorysync-api', logLevel: 'INFO' });
    api = handlerWith([requestId(), accessLog({ logger }), given({ router }), errorHandler({ logger })], createDispatcher(router, 1_048_576));
  });
  afterEach(() => vi.restoreAllMocks());

  const requestLines = () => output.lines().filter((l) => l.message === 'request');

  it('writes one line per request with request id, method, route template, status and latency', async () => {
    const res = await api(apiEvent({ method: 'POST', path: '/memory/add', headers: { ...secretHeaders, 'X-Request-ID': 'log-test-add-0001' }, body: { text: MEMORY_TEXT } }));
    expect(res.statusCode).toBe(201);
    const lines = requestLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'INFO', requestId: 'log-test-add-0001', method: 'POST', route: '/memory/add', status: 201 });
    expect(typeof lines[0].latencyMs).toBe('number');
  });

  it('logs a rejected request once, at INFO, with its status', async () => {
    await api(apiEvent({ method: 'POST', path: '/memory/query', headers: { ...secretHeaders, 'X-Request-ID': 'log-test-401-0001' }, body: { query: MEMORY_TEXT } }));
    expect(requestLines()).toEqual([expect.objectContaining({ level: 'INFO', requestId: 'log-test-401-0001', route: '/memory/query', status: 401 })]);
  });

  it('logs a crashed request once at ERROR with the error name', async () => {
    const res = await api(apiEvent({ method: 'GET', path: '/memory/7', headers: { ...secretHeaders, 'X-Request-ID': 'log-test-500-0001' } }));
    expect(res.statusCode).toBe(500);
    const lines = requestLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'ERROR', requestId: 'log-test-500-0001', route: '/memory/{id}', status: 500, error: { name: 'TypeError' } });
  });

  it('logs an unknown path without a route template (never the raw path)', async () => {
    await api(apiEvent({ method: 'GET', path: '/nowhere', headers: { 'X-Request-ID': 'log-test-404-0001' } }));
    const lines = requestLines();
    expect(lines).toEqual([expect.objectContaining({ requestId: 'log-test-404-0001', status: 404 })]);
    // Powertools drops null attributes, so an unmatched route is simply absent.
    expect(lines[0].route ?? null).toBeNull();
  });

  it('never writes the body text, the API key, the bearer token or the cookie, on success or failure', async () => {
    await api(apiEvent({ method: 'POST', path: '/memory/add', headers: secretHeaders, body: { text: MEMORY_TEXT } }));
    await api(apiEvent({ method: 'POST', path: '/memory/query', headers: secretHeaders, body: { query: MEMORY_TEXT } }));
    await api(apiEvent({ method: 'GET', path: '/memory/7', headers: secretHeaders, query: { q: MEMORY_TEXT } }));
    expect(requestLines()).toHaveLength(3);
    const text = output.text();
    expect(text.length).toBeGreaterThan(0);
    for (const secret of [MEMORY_TEXT, 'purple-elephant-42', API_KEY, BEARER, 'S3cr3tS1gnatur3Valu3']) expect(text).not.toContain(secret);
  });
});
