import type { MemoryService } from '../../services/memory-service.ts';
import { toMemoryResponse, type Memory } from '../../services/memory-model.ts';
import type { RecallFeatures } from '../../services/recall-features.ts';
import type { EndUserScope } from '../../services/scope.ts';
import { clustersQuery, composeBody, endUserQuery, graphQuery, offsetPageQuery, routedSearchBody, summarizeBody } from '../schemas/recall.ts';
import type { RouteContext, RouteDefinition } from '../types.ts';
import { lifecycleRoutes } from './lifecycle-routes.ts';
import { memoryRoutes } from './memory-routes.ts';
import { auditMeta, route } from './route.ts';
import { v2MemoryRoutes } from './v2-memory-routes.ts';

const owner = (ctx: RouteContext): EndUserScope => ctx.endUser as EndUserScope;
const READ = ['memories:read'];
const WRITE = ['memories:write'];
const scored = (m: Memory, score: number | null) => ({ ...toMemoryResponse(m), score });

/**
 * Recall features and maintenance on /memory/*: summarize, compose, the query router, derived views
 * (computed on read, bounded), refresh and the two purges. All of them act on the resolved end user.
 */
export function recallRoutes(features: RecallFeatures): RouteDefinition[] {
  const { recall, insights, lifecycle } = features;
  return [
    route({
      method: 'POST', path: '/memory/summarize', summary: 'Summarize memories (stores a linked summary memory)', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      body: summarizeBody, audit: { event: 'memory.summarize', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const result = await recall.summarize(owner(ctx), ctx.body, auditMeta(ctx));
        if (result.summary_memory) ctx.audit.resourceId = String(result.summary_memory.id);
        return {
          status: 200,
          body: { summary: result.summary, memory_ids: result.memory_ids, missing_ids: result.missing_ids, summary_memory_id: result.summary_memory?.id ?? null, summary_memory: result.summary_memory ? toMemoryResponse(result.summary_memory) : null },
        };
      },
    }),
    route({
      method: 'POST', path: '/memory/compose', summary: 'Build a prompt from memories within a token budget (cl100k_base)', tags: ['memory'], auth: 'any', scopes: READ, endUser: true,
      body: composeBody, audit: { event: 'memory.compose', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const b = ctx.body;
        const result = await recall.compose(owner(ctx), { query: b.query, k: b.k, filters: b.filters, weights: b.weights, token_budget: b.token_budget, system_prompt: b.system_prompt, template: b.template });
        return {
          status: 200,
          body: { ...result, memories: result.memories.map(({ memory, tokens }) => ({ ...toMemoryResponse(memory), tokens })) },
        };
      },
    }),
    route({
      method: 'POST', path: '/memory/search/routed', summary: 'Route a query to semantic, lexical, recency or tag search', tags: ['memory'], auth: 'any', scopes: READ, endUser: true,
      body: routedSearchBody, audit: { event: 'memory.search', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const result = await recall.routedSearch(owner(ctx), { query: ctx.body.query, k: ctx.body.k, filters: ctx.body.filters, weights: ctx.body.weights });
        const { results, ...rest } = result;
        return { status: 200, body: { ...rest, results: results.map((r) => scored(r.memory, r.score)) } };
      },
    }),
    route({
      method: 'GET', path: '/memory/graph', summary: 'Related memories as nodes and similarity edges (computed on read, ≤ 500 nodes)', tags: ['memory'], auth: 'any', scopes: READ, endUser: true, query: graphQuery,
      handler: async (ctx) => ({ status: 200, body: await insights.graph(owner(ctx), { limit: ctx.query.limit, threshold: ctx.query.threshold, neighbours: ctx.query.neighbours }) }),
    }),
    route({
      method: 'GET', path: '/memory/clusters', summary: 'Topic clusters by cosine similarity (computed on read, ≤ 500 memories)', tags: ['memory'], auth: 'any', scopes: READ, endUser: true, query: clustersQuery,
      handler: async (ctx) => ({ status: 200, body: await insights.clusters(owner(ctx), { limit: ctx.query.limit, threshold: ctx.query.threshold, minSize: ctx.query.min_size }) }),
    }),
    route({
      method: 'GET', path: '/memory/decisions', summary: 'Memories classified as decisions', tags: ['memory'], auth: 'any', scopes: READ, endUser: true, query: offsetPageQuery,
      handler: async (ctx) => {
        const page = await insights.decisions(owner(ctx), { limit: ctx.query.limit, offset: ctx.query.offset });
        return { status: 200, body: { ...page, items: page.items.map(toMemoryResponse) } };
      },
    }),
    route({
      method: 'GET', path: '/memory/intelligence', summary: 'Aggregate insights about the end user\'s memories', tags: ['memory'], auth: 'any', scopes: READ, endUser: true, query: endUserQuery,
      handler: async (ctx) => ({ status: 200, body: await insights.intelligence(owner(ctx), new Date()) }),
    }),
    route({
      method: 'POST', path: '/memory/refresh', summary: 'Recompute tiers and queue re-embedding of the end user\'s memories', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true, bodyFormat: 'none',
      audit: { event: 'memory.refresh', resource: 'memory', category: 'data' },
      handler: async (ctx) => ({ status: 202, body: await lifecycle.refresh(owner(ctx), auditMeta(ctx)) }),
    }),
    route({
      method: 'POST', path: '/memory/purge', summary: 'Hard-delete the end user\'s soft-deleted and expired memories', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true, bodyFormat: 'none',
      audit: { event: 'memory.purge', resource: 'memory', category: 'data' },
      handler: async (ctx) => ({ status: 200, body: await lifecycle.purge(owner(ctx), auditMeta(ctx)) }),
    }),
    route({
      method: 'DELETE', path: '/memory/user/purge', summary: 'Delete everything stored for the resolved end user', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'admin', endUser: true,
      audit: { event: 'memory.user_purge', resource: 'end_user', category: 'data' },
      handler: async (ctx) => {
        ctx.audit.resourceId = owner(ctx).endUserExternalId;
        return { status: 200, body: await lifecycle.purgeUser(owner(ctx), auditMeta(ctx)) };
      },
    }),
  ];
}

/** Everything this area mounts: /memory/* recall features, /api/v1 lifecycle, explain and refusals, /api/v2 memory. */
export function recallFeatureRoutes(features: RecallFeatures, memories: MemoryService): RouteDefinition[] {
  return [...recallRoutes(features), ...lifecycleRoutes(features, memories), ...v2MemoryRoutes(memoryRoutes(memories, features.related), memories)];
}
