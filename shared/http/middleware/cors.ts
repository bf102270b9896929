import type { MiddlewareObj } from '@middy/core';
import httpCors from '@middy/http-cors';

/** CORS via @middy/http-cors. Preflights go through the whole chain and are answered by the dispatcher (204). */
export const cors = (opts: { origins: string[] }): MiddlewareObj =>
  httpCors({
    origins: opts.origins,
    credentials: !opts.origins.includes('*'),
    headers: 'Content-Type,Authorization,X-API-Key,X-End-User-ID,X-Project-ID,X-Tenant-ID,X-Request-ID,X-CSRF-Token',
    methods: 'GET,POST,PUT,PATCH,DELETE,OPTIONS',
    exposeHeaders: 'X-Request-ID,X-RateLimit-Limit,X-RateLimit-Remaining,X-RateLimit-Reset,Retry-After',
    maxAge: 600,
    disableBeforePreflightResponse: true,
  }) as MiddlewareObj;
