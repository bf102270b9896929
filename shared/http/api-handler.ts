import middy from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { IdentityService } from '../services/identity-service.ts';
import type { RateLimiter } from '../services/rate-limiter.ts';
import { createDispatcher } from './dispatch.ts';
import { audit } from './middleware/audit.ts';
import { cors } from './middleware/cors.ts';
import { csrf } from './middleware/csrf.ts';
import { errorHandler } from './middleware/error-handler.ts';
import { accessLog } from './middleware/logging.ts';
import { projectResolver } from './middleware/project.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestId } from './middleware/request-id.ts';
import { securityHeaders } from './middleware/security-headers.ts';
import { tenantResolver, type BearerResolver } from './middleware/tenant.ts';
import type { Router } from './router.ts';
import type { ApiHandler, ApiRequest } from './types.ts';

export interface ApiHandlerDeps {
  router: Router;
  identity: IdentityService;
  limiter: RateLimiter;
  db: Kysely<Database>;
  logger: Logger;
  corsOrigins: string[];
  maxBodyBytes: number;
  rateLimitsEnabled: boolean;
  /** OAuth access tokens, SCIM provisioning tokens */
  bearerResolvers?: readonly BearerResolver[];
}

const REQUEST = Symbol.for('memorysync.request');

/**
 * The one middy chain, outermost first: CORS → request id → logging → CSRF → tenant (authentication)
 * → rate limit → project (and end user) → audit → security headers → error rendering → route.
 */
export function createApiHandler(deps: ApiHandlerDeps): ApiHandler {
  const dispatch = createDispatcher(deps.router, deps.maxBodyBytes);
  return middy<APIGatewayProxyEvent, any, Error, Context>(async (_event: APIGatewayProxyEvent, context: Context) => dispatch((context as unknown as Record<symbol, ApiRequest>)[REQUEST]))
    .use(cors({ origins: deps.corsOrigins }))
    .use(requestId())
    .use(accessLog({ logger: deps.logger }))
    .use(csrf())
    .use(tenantResolver({ router: deps.router, identity: deps.identity, bearerResolvers: deps.bearerResolvers }))
    .use(rateLimit({ limiter: deps.limiter, enabled: deps.rateLimitsEnabled }))
    .use(projectResolver({ router: deps.router, identity: deps.identity, maxBodyBytes: deps.maxBodyBytes }))
    .use(audit({ db: deps.db, logger: deps.logger }))
    .use(securityHeaders())
    .use(errorHandler({ logger: deps.logger }))
    .use({
      before: (request) => {
        (request.context as unknown as Record<symbol, unknown>)[REQUEST] = request;
      },
    }) as unknown as ApiHandler;
}
