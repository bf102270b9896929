import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { MiddyfiedHandler, Request } from '@middy/core';
import type { z } from 'zod';
import type { EndUserScope, Principal, Scope } from '../services/scope.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Who may call a route. */
export type RouteAuth = 'public' | 'any' | 'session' | 'platform-admin' | 'scim';

export interface RouteContext<B = any, Q = any, P = any> {
  body: B;
  query: Q;
  params: P;
  headers: Record<string, string>;
  requestId: string;
  sourceIp: string | null;
  userAgent: string | null;
  principal: Principal | null;
  /** the session of a bearer/cookie caller */
  sessionId: string | null;
  scope: Scope | null;
  /** set on routes with `endUser: true` */
  endUser: EndUserScope | null;
  audit: AuditTrail;
  event: APIGatewayProxyEvent;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Set-Cookie values (sent as multiValueHeaders, as API Gateway's proxy integration expects) */
  cookies?: string[];
}

export interface RouteDefinition<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType> {
  method: HttpMethod;
  path: string;
  summary: string;
  tags?: string[];
  auth: RouteAuth;
  /** api-key scopes required (sessions pass by role) */
  scopes?: string[];
  /** minimum role for session callers */
  minRole?: 'owner' | 'admin' | 'member' | 'viewer';
  /** resolve the memory owner (X-End-User-ID for keys, the account for sessions) */
  endUser?: boolean | 'v1';
  body?: B;
  /** how the body is encoded: JSON (default), form-urlencoded (OAuth token endpoint), or no body at all */
  bodyFormat?: 'json' | 'form' | 'none';
  query?: Q;
  params?: P;
  /** response schemas by status, for the OpenAPI document */
  responses?: Record<number, z.ZodType | null>;
  /** the audit event a successful call records (mutations) */
  audit?: { event: string; resource: string; category?: string };
  handler(ctx: RouteContext<z.infer<B>, z.infer<Q>, z.infer<P>>): Promise<RouteResult>;
}

/** Mutating requests record exactly one audit row; a service inside its transaction may claim it. */
export interface AuditTrail {
  written: boolean;
  resourceId: string | null;
  payload: Record<string, unknown>;
}

export interface RequestState {
  requestId: string;
  startedAt: number;
  route?: { definition: RouteDefinition; params: Record<string, string> } | null;
  body?: unknown;
  /** body, query and path parameters after the route's schemas */
  input?: { body: unknown; query: unknown; params: unknown };
  principal?: Principal | null;
  sessionId?: string;
  scope?: Scope | null;
  endUser?: EndUserScope | null;
  audit: AuditTrail;
  rateLimit?: { limit: number; remaining: number; reset: number };
}

export type ApiRequest = Request<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context, Record<string, unknown>> & {
  internal: Record<string, unknown> & { memorysync?: RequestState };
};

export type ApiHandler = MiddyfiedHandler<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>;

/** State travels on request.internal under one namespaced key (never module globals). */
export const stateOf = (request: { internal: Record<string, unknown> }): RequestState => {
  const internal = request.internal as { memorysync?: RequestState };
  internal.memorysync ??= { requestId: '', startedAt: Date.now(), audit: { written: false, resourceId: null, payload: {} } };
  return internal.memorysync;
};

/** Case-insensitive header read (API Gateway keeps the client's casing). */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) {
    if (k.toLowerCase() === wanted && v !== undefined && v !== null) return v;
  }
  return undefined;
}
