import type { MemoryService } from '../../services/memory-service.ts';
import type { LifecycleAction } from '../../services/memory-lifecycle.ts';
import type { RecallFeatures } from '../../services/recall-features.ts';
import { LEXICAL_SHARE, RECENCY_HALF_LIFE_DAYS } from '../../services/scoring.ts';
import type { EndUserScope } from '../../services/scope.ts';
import { memoryIdParam } from '../schemas/common.ts';
import { explainBody, refusalsQuery } from '../schemas/recall.ts';
import type { RouteContext, RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const owner = (ctx: RouteContext): EndUserScope => ctx.endUser as EndUserScope;
const READ = ['memories:read'];
const WRITE = ['memories:write'];

const round = (n: number) => Math.round(n * 1e6) / 1e6;
const FORMULA = `final = (w_semantic·relevance + w_recency·recency + w_importance·importance) / Σw; relevance = ${1 - LEXICAL_SHARE}·semantic + ${LEXICAL_SHARE}·lexical; recency = 0.5^(age_days/${RECENCY_HALF_LIFE_DAYS})`;

/** /api/v1 lifecycle (archive, restore, soft-delete, history), explainability and the refusals log. */
export function lifecycleRoutes(features: RecallFeatures, memories: MemoryService): RouteDefinition[] {
  const { lifecycle, refusals } = features;
  const transition = (action: LifecycleAction, path: string, summary: string) =>
    route({
      method: 'POST', path, summary, tags: ['lifecycle'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true, params: memoryIdParam, bodyFormat: 'none',
      audit: { event: `memory.${action}`, resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        ctx.audit.resourceId = String(ctx.params.id);
        return { status: 200, body: await lifecycle.transition(owner(ctx), ctx.params.id, action, auditMeta(ctx)) };
      },
    });

  return [
    transition('archive', '/api/v1/memories/{id}/archive', 'Archive a memory (readable by id, not searchable)'),
    transition('restore', '/api/v1/memories/{id}/restore', 'Restore an archived memory, or a soft-deleted one within the 7-day grace'),
    transition('soft_delete', '/api/v1/memories/{id}/soft-delete', 'Soft-delete a memory (restorable for 7 days)'),
    route({
      method: 'GET', path: '/api/v1/memories/{id}/lifecycle', summary: 'Retention state, timestamps and event history of a memory', tags: ['lifecycle'], auth: 'any', scopes: READ, endUser: true, params: memoryIdParam,
      handler: async (ctx) => ({ status: 200, body: await lifecycle.lifecycle(owner(ctx), ctx.params.id) }),
    }),
    route({
      method: 'POST', path: '/api/v1/explain', summary: 'Why a memory matches a query: the parts of its recall score', tags: ['explainability'], auth: 'any', scopes: READ, endUser: true,
      body: explainBody, audit: { event: 'memory.explain', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const e = await memories.explain(owner(ctx), { query: ctx.body.query, memoryId: ctx.body.memory_id, weights: ctx.body.weights, filters: ctx.body.filters });
        const b = e.breakdown;
        return {
          status: 200,
          body: {
            memory_id: e.memoryId,
            query: ctx.body.query,
            score: {
              semantic: round(b.semantic), lexical: round(b.lexical), relevance: round(b.relevance), recency: round(b.recency), importance: round(b.importance),
              age_days: round(b.age_days), weights: b.weights,
              contributions: { semantic: round(b.contributions.semantic), recency: round(b.contributions.recency), importance: round(b.contributions.importance) },
              final: round(b.final),
            },
            eligible: e.eligible,
            reasons: e.reasons,
            rank: e.rank,
            indexed: e.indexed,
            degraded: e.degraded,
            formula: FORMULA,
          },
        };
      },
    }),
    route({
      method: 'GET', path: '/api/v1/refusals', summary: 'Content the write path refused (reason, keyed hash, time; never the text)', tags: ['refusals'], auth: 'any', scopes: ['audit:read'], minRole: 'admin', query: refusalsQuery,
      handler: async (ctx) => ({ status: 200, body: await refusals.list(ctx.scope!, { limit: ctx.query.limit, offset: ctx.query.offset, reason: ctx.query.reason, endUserId: ctx.query.end_user_id }) }),
    }),
  ];
}
