import { describe, expect, it } from 'vitest';
import { AppError } from '#shared/errors.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { requestId } from '#shared/http/middleware/request-id.ts';
import { stateOf } from '#shared/http/types.ts';
import { apiEvent } from '../../../support/events.ts';
import { bodyJson, handlerWith, silentLogger } from '../middy-harness.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Answers with the id the route saw, so a test can compare it with the header. */
const api = handlerWith([requestId(), errorHandler({ logger: silentLogger() })], (request) => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json', 'X-Custom': 'kept' },
  body: JSON.stringify({ seen: stateOf(request).requestId }),
}));

const failing = handlerWith([requestId(), errorHandler({ logger: silentLogger() })], () => {
  throw new AppError('NOT_FOUND', 404, 'Memory not found');
});

const withId = (id: string) => apiEvent({ method: 'GET', path: '/memory/12', headers: { 'X-Request-ID': id } });

describe('request id middleware', () => {
  it('echoes a well-formed incoming X-Request-ID in the header and to the route', async () => {
    const res = await api(withId('trace-7f3a9c21:web.1'));
    expect(res.headers?.['X-Request-ID']).toBe('trace-7f3a9c21:web.1');
    expect(bodyJson(res).seen).toBe('trace-7f3a9c21:web.1');
  });

  it('reads the incoming header whatever its casing', async () => {
    const res = await api(apiEvent({ method: 'GET', path: '/health', headers: { 'x-request-id': 'lowercase-client-0001' } }));
    expect(res.headers?.['X-Request-ID']).toBe('lowercase-client-0001');
  });

  it.each([
    ['contains spaces and markup', 'abc <script>alert(1)</script>'],
    ['contains a newline (header injection)', 'valid-prefix-123\r\nSet-Cookie: x=1'],
    ['is shorter than 8 characters', 'abc123'],
    ['is longer than 128 characters', 'a'.repeat(129)],
    ['is empty', ''],
  ])('replaces an incoming id that %s with a generated UUID', async (_why, incoming) => {
    const res = await api(withId(incoming));
    const id = res.headers?.['X-Request-ID'] as string;
    expect(id).toMatch(UUID);
    expect(bodyJson(res).seen).toBe(id);
  });

  it('accepts an incoming id of exactly 128 characters', async () => {
    const longest = 'b'.repeat(128);
    expect((await api(withId(longest))).headers?.['X-Request-ID']).toBe(longest);
  });

  it('generates a fresh UUID for each request that sends none', async () => {
    const first = await api(apiEvent({ method: 'GET', path: '/health' }));
    const second = await api(apiEvent({ method: 'GET', path: '/health' }));
    expect(first.headers?.['X-Request-ID']).toMatch(UUID);
    expect(second.headers?.['X-Request-ID']).toMatch(UUID);
    expect(first.headers?.['X-Request-ID']).not.toBe(second.headers?.['X-Request-ID']);
  });

  it('adds the header without dropping the headers the route set', async () => {
    const res = await api(withId('keeps-other-headers'));
    expect(res.headers).toMatchObject({ 'X-Custom': 'kept', 'Content-Type': 'application/json', 'X-Request-ID': 'keeps-other-headers' });
  });

  it('puts the same id in the header and the body of an error response', async () => {
    const echoed = await failing(withId('error-path-0001'));
    expect(echoed.statusCode).toBe(404);
    expect(echoed.headers?.['X-Request-ID']).toBe('error-path-0001');
    expect(bodyJson(echoed).request_id).toBe('error-path-0001');

    const generated = await failing(apiEvent({ method: 'GET', path: '/memory/12' }));
    expect(generated.headers?.['X-Request-ID']).toMatch(UUID);
    expect(bodyJson(generated).request_id).toBe(generated.headers?.['X-Request-ID']);
  });
});
