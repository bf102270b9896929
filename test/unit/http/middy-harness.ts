import middy, { type MiddlewareObj } from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { routeOf } from '#shared/http/route-of.ts';
import type { Router } from '#shared/http/router.ts';
import { stateOf, type ApiRequest } from '#shared/http/types.ts';
import type { Principal } from '#shared/services/scope.ts';
import { lambdaContext } from '../../support/events.ts';

export type Respond = (request: ApiRequest) => Promise<APIGatewayProxyResult> | APIGatewayProxyResult;

const REQUEST = Symbol('test.middy-request');

export const ok: Respond = () => ({ statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ok: true }) });

/**
 * A real middy handler: the given middlewares (outermost first) around `respond`, which receives the
 * middy request so it can read the state the middlewares left. The same shape as the API handler.
 */
export function handlerWith(middlewares: MiddlewareObj[], respond: Respond = ok) {
  const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>(async (_event: APIGatewayProxyEvent, context: Context) =>
    respond((context as unknown as Record<symbol, ApiRequest>)[REQUEST]),
  );
  for (const middleware of middlewares) handler.use(middleware);
  handler.use({
    before: (request) => {
      (request.context as unknown as Record<symbol, unknown>)[REQUEST] = request;
    },
  });
  return (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => handler(event, lambdaContext());
}

/** The parsed JSON body of a response. */
export const bodyJson = (res: APIGatewayProxyResult): any => JSON.parse(res.body);

/**
 * Arranges what the outer middlewares of the real chain would have established: the matched route
 * (as the tenant resolver does) and the authenticated principal.
 */
export const given = (opts: { router?: Router; principal?: Principal }): MiddlewareObj => ({
  before: (request) => {
    if (opts.router) routeOf(request as ApiRequest, opts.router);
    if (opts.principal) stateOf(request).principal = opts.principal;
  },
});

/** An API-key principal as IdentityService resolves one. */
export function apiKeyPrincipal(overrides: Partial<Principal> = {}): Principal {
  return {
    kind: 'api_key', tenantId: 'org_5a1e2b3c4d5e6f70', accountId: 7, accountPublicId: null, apiKeyId: 31,
    role: 'member', scopes: ['memories:read', 'memories:write', 'projects:read'], projectLock: null,
    environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false, ...overrides,
  };
}

export const silentLogger = () => new Logger({ serviceName: 'memorysync-test', logLevel: 'SILENT' });
