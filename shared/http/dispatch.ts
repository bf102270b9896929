import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { AppError } from '../errors.ts';
import { routeInput } from './route-input.ts';
import type { Router } from './router.ts';
import { header, stateOf, type ApiRequest, type RouteContext } from './types.ts';

/**
 * The innermost handler: validates body, query and path with the route's zod schemas, calls the
 * route, and serialises its result. A 204 has no body.
 */
/**
 * CORS preflight: answered here rather than early in the CORS middleware, so that it passes through the
 * whole chain and carries X-Request-ID and the security headers like every other response.
 */
function preflight(router: Router, path: string): APIGatewayProxyResult {
  try {
    router.match('OPTIONS', path);
  } catch (err) {
    if (err instanceof AppError && err.status === 405) return { statusCode: 204, headers: { Allow: err.headers?.Allow ?? '' }, body: '' };
    throw err;
  }
  return { statusCode: 204, headers: {}, body: '' };
}

export function createDispatcher(router: Router, maxBodyBytes: number) {
  return async (request: ApiRequest): Promise<APIGatewayProxyResult> => {
    const event: APIGatewayProxyEvent = request.event;
    const state = stateOf(request);
    if (event.httpMethod === 'OPTIONS') return preflight(router, event.path);
    const matched = state.route ?? router.match(event.httpMethod, event.path);
    const { definition } = matched;
    const input = routeInput(request, matched, maxBodyBytes);
    const ctx: RouteContext = {
      body: input.body,
      query: input.query,
      params: input.params,
      headers: Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? ''])),
      requestId: state.requestId,
      sourceIp: event.requestContext?.identity?.sourceIp ?? null,
      userAgent: header(event, 'user-agent') ?? null,
      principal: state.principal ?? null,
      sessionId: state.sessionId ?? null,
      scope: state.scope ?? null,
      endUser: state.endUser ?? null,
      audit: state.audit,
      event,
    };
    const result = await definition.handler(ctx);
    const headers: Record<string, string> = { ...(result.headers ?? {}) };
    const multiValueHeaders = result.cookies?.length ? { 'Set-Cookie': result.cookies } : undefined;
    if (result.status === 204 || result.body === undefined) {
      return { statusCode: result.status, headers, body: '', ...(multiValueHeaders ? { multiValueHeaders } : {}) };
    }
    return {
      statusCode: result.status,
      headers: { 'Content-Type': 'application/json', ...headers },
      ...(multiValueHeaders ? { multiValueHeaders } : {}),
      body: typeof result.body === 'string' && headers['Content-Type'] ? result.body : JSON.stringify(result.body),
    };
  };
}
