import { describe, expect, it } from 'vitest';
import { AppError } from '#shared/errors.ts';
import { createDispatcher } from '#shared/http/dispatch.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { Router } from '#shared/http/router.ts';
import type { HttpMethod, RouteDefinition } from '#shared/http/types.ts';
import { apiEvent } from '../../support/events.ts';
import { bodyJson, handlerWith, silentLogger } from './middy-harness.ts';

/** A route that answers with its own template and the params it was given. */
const echo = (method: HttpMethod, path: string): RouteDefinition => ({
  method, path, summary: `${method} ${path}`, auth: 'public',
  handler: async (ctx) => ({ status: 200, body: { route: `${method} ${path}`, params: ctx.params } }),
});

const routes = [
  echo('GET', '/health'),
  echo('GET', '/memory/{id}'),
  echo('PATCH', '/memory/{id}'),
  echo('DELETE', '/memory/{id}'),
  echo('GET', '/memory/export'),
  echo('POST', '/memory/add'),
  echo('GET', '/v1/memory/{tenant_id}/{user_id}/list'),
];
const router = new Router(routes);

/** The router behind the real dispatcher and error handler, as the API handler runs it. */
const api = handlerWith([errorHandler({ logger: silentLogger() })], createDispatcher(router, 1_048_576));

function thrownBy(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected the router to throw');
}

describe('Router', () => {
  it('prefers a static segment over a parameter whatever the declaration order', () => {
    expect(router.match('GET', '/memory/export').definition.path).toBe('/memory/export');
    expect(router.match('GET', '/memory/41').definition.path).toBe('/memory/{id}');
    const reversed = new Router([echo('GET', '/memory/export'), echo('GET', '/memory/{id}')].reverse());
    expect(reversed.match('GET', '/memory/export').definition.path).toBe('/memory/export');
  });

  it('decodes percent-encoded path parameters', () => {
    const { definition, params } = router.match('GET', '/v1/memory/default/alice%40example.com%20%E2%9C%93/list');
    expect(definition.path).toBe('/v1/memory/{tenant_id}/{user_id}/list');
    expect(params).toEqual({ tenant_id: 'default', user_id: 'alice@example.com ✓' });
  });

  it('keeps an encoded slash inside one parameter instead of splitting the path', () => {
    expect(router.match('GET', '/memory/a%2Fb').params).toEqual({ id: 'a/b' });
  });

  it('matches a path with a trailing slash like the path without it', () => {
    expect(router.match('GET', '/health/').definition.path).toBe('/health');
    expect(router.match('GET', '/memory/7/').params).toEqual({ id: '7' });
  });

  it('answers 404 NOT_FOUND in the envelope for an unknown path', async () => {
    const res = await api(apiEvent({ method: 'GET', path: '/memory/7/history' }));
    expect(res.statusCode).toBe(404);
    expect(bodyJson(res).error.code).toBe('NOT_FOUND');
    expect(res.headers?.Allow).toBeUndefined();
  });

  it('answers 405 with an Allow header listing the methods of a known path', async () => {
    const res = await api(apiEvent({ method: 'PUT', path: '/memory/7' }));
    expect(res.statusCode).toBe(405);
    expect(res.headers?.Allow).toBe('DELETE, GET, PATCH');
    expect(bodyJson(res).error.code).toBe('METHOD_NOT_ALLOWED');
    expect(thrownBy(() => router.match('GET', '/memory/add')).headers).toEqual({ Allow: 'POST' });
  });

  it('answers 405 for a method the static path lacks instead of treating the segment as a parameter', () => {
    const err = thrownBy(() => router.match('DELETE', '/memory/export'));
    expect(err.status).toBe(405);
    expect(err.headers).toEqual({ Allow: 'GET' });
  });

  it('dispatches the matched route with its decoded params', async () => {
    const res = await api(apiEvent({ method: 'GET', path: '/memory/export' }));
    expect(res.statusCode).toBe(200);
    expect(bodyJson(res)).toEqual({ route: 'GET /memory/export', params: {} });
  });

  it('rejects bad percent-encoding in a parameter with 422 VALIDATION_ERROR', async () => {
    expect(thrownBy(() => router.match('GET', '/memory/%E0%A4%A')).status).toBe(422);
    const res = await api(apiEvent({ method: 'GET', path: '/v1/memory/default/%ZZbob/list' }));
    expect(res.statusCode).toBe(422);
    expect(bodyJson(res).error).toMatchObject({ code: 'VALIDATION_ERROR', details: [] });
  });

  it('refuses two definitions of the same method and path', () => {
    expect(() => new Router([echo('POST', '/memory/add'), echo('POST', '/memory/add')])).toThrow(/duplicate route POST \/memory\/add/);
  });

  it('refuses two definitions that differ only in parameter names or a trailing slash', () => {
    expect(() => new Router([echo('GET', '/memory/{id}'), echo('GET', '/memory/{memory_id}')])).toThrow(/duplicate route/);
    expect(() => new Router([echo('GET', '/health'), echo('GET', '/health/')])).toThrow(/duplicate route/);
  });

  it('accepts the same path under different methods', () => {
    expect(() => new Router([echo('GET', '/memory/{id}'), echo('DELETE', '/memory/{id}')])).not.toThrow();
  });
});
