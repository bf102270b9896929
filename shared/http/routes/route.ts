import type { z } from 'zod';
import type { AuditMeta } from '../../services/identity-service.ts';
import type { RouteContext, RouteDefinition } from '../types.ts';

/** Declares a route with its schemas; the helper exists only to infer handler types from them. */
export const route = <B extends z.ZodType = z.ZodAny, Q extends z.ZodType = z.ZodAny, P extends z.ZodType = z.ZodAny>(
  definition: RouteDefinition<B, Q, P>,
): RouteDefinition => definition as unknown as RouteDefinition;

export const auditMeta = (ctx: RouteContext): AuditMeta => ({
  requestId: ctx.requestId,
  ipAddress: ctx.sourceIp,
  userAgent: ctx.userAgent,
  audit: ctx.audit,
});
