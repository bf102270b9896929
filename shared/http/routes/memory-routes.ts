import { z } from 'zod';
import { notFound } from '../../errors.ts';
import type { MemoryService } from '../../services/memory-service.ts';
import type { RelatedMemories } from '../../services/related-memories.ts';
import { toMemoryResponse, toV1Item, type ScoredMemory } from '../../services/memory-model.ts';
import { toV1MemoryId } from '../../services/ids.ts';
import type { EndUserScope } from '../../services/scope.ts';
import { zodDetails } from '../middleware/error-handler.ts';
import { addMemoryBody, addTurnBody, bulkAddBody, bulkItemSchema, exportQuery, forgetBody, patchMemoryBody, queryMemoryBody, v1ListParams, v1ListQuery, v1QueryBody } from '../schemas/memory.ts';
import { memoryIdParam } from '../schemas/common.ts';
import type { RouteContext, RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const owner = (ctx: RouteContext): EndUserScope => ctx.endUser as EndUserScope;
const READ = ['memories:read'];
const WRITE = ['memories:write'];
/** Queries are POSTs, so they are audited; the memory service writes the row (see MemoryService.query). */
const QUERY_AUDIT = { event: 'memory.query', resource: 'memory', category: 'data' } as const;

const contextBlock = (memories: ScoredMemory[]) => memories.map((m) => `- ${m.text.replace(/\s+/g, ' ')}`).join('\n');

/** Role inference for add_turn: role field → text prefix → speaker head → metadata.role → user. */
const ROLE_PREFIX = /^\s*(user|human|customer|caller|ai|assistant|bot|agent|system|tool)\s*:\s*/i;
const ROLE_ALIASES: Record<string, string> = { human: 'user', customer: 'user', caller: 'user', user: 'user', ai: 'assistant', bot: 'assistant', agent: 'assistant', assistant: 'assistant', system: 'system', tool: 'tool' };
function inferRole(body: z.infer<typeof addTurnBody>): { role: string; text: string } {
  const m = ROLE_PREFIX.exec(body.text);
  const text = m ? body.text.slice(m[0].length).trim() || body.text.trim() : body.text.trim();
  const candidates = [body.role, m?.[1], body.speaker?.split('@')[0], typeof body.metadata?.role === 'string' ? body.metadata.role : undefined];
  for (const c of candidates) {
    const role = c ? ROLE_ALIASES[c.toLowerCase()] : undefined;
    if (role) return { role, text };
  }
  return { role: 'user', text };
}

export function memoryRoutes(memories: MemoryService, related?: RelatedMemories): RouteDefinition[] {
  const query = (path: string) => async (ctx: RouteContext<z.infer<typeof queryMemoryBody>>) => {
    const started = Date.now();
    // The audit row travels with the statement that counts the query.
    const audit = { meta: auditMeta(ctx), eventType: QUERY_AUDIT.event, route: path };
    const result = await memories.query(owner(ctx), { query: ctx.body.query, k: ctx.body.k, filters: ctx.body.filters, weights: ctx.body.weights }, audit);
    if (result.quotaExhausted) return { status: 200, body: { memories: [] } };
    // traversal_depth (opt-in): related memories beside the unchanged top-k — shared/services/related-memories.ts
    const traversal = ctx.body.traversal_depth && related ? await related.expand(owner(ctx), result.memories, ctx.body.traversal_depth, ctx.body.k) : null;
    return {
      status: 200,
      body: {
        memories: result.memories.map(toMemoryResponse),
        context: result.memories.length ? contextBlock(result.memories) + (traversal?.related.length ? `\nRelated:\n${contextBlock(traversal.related.map((r) => r.memory as ScoredMemory))}` : '') : null,
        latency_ms: Date.now() - started,
        session_id: ctx.body.session_id ?? null,
        degraded: result.degraded,
        ...(traversal ? { related: traversal.related.map((r) => ({ ...toMemoryResponse(r.memory), score: r.score, related_to: r.relatedTo, depth: r.depth, via: r.via })) } : {}),
      },
    };
  };

  return [
    route({
      method: 'POST', path: '/memory/add', summary: 'Store a memory', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      body: addMemoryBody, audit: { event: 'memory.create', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const { text, source, event_type, tags, ttl_minutes, importance, metadata, deduplicate } = ctx.body;
        const outcome = await memories.add(owner(ctx), { text, source, event_type, tags, ttl_minutes, importance, metadata, deduplicate }, auditMeta(ctx));
        if (outcome.status === 'quota') return { status: 200, body: { status: 'ok' } };
        if (outcome.status === 'duplicate') return { status: 200, body: { status: 'skipped', reason: 'duplicate', existing_id: outcome.existingId } };
        ctx.audit.resourceId = String(outcome.memory.id);
        return { status: 201, body: toMemoryResponse(outcome.memory) };
      },
    }),
    route({
      method: 'POST', path: '/memory/bulk-add', summary: 'Store up to 50 memories', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      body: bulkAddBody, audit: { event: 'memory.bulk_create', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const items = ctx.body.items.map((raw) => {
          const parsed = bulkItemSchema.safeParse(raw);
          if (parsed.success) return parsed.data;
          const d = zodDetails(parsed.error)[0];
          return { rejected: d ? `${d.loc.join('.') || 'item'}: ${d.msg}` : 'invalid item' };
        });
        const result = await memories.bulkAdd(owner(ctx), items, ctx.body.deduplicate, auditMeta(ctx));
        return { status: 207, body: result };
      },
    }),
    route({ method: 'POST', path: '/memory/query', summary: 'Semantic recall', tags: ['memory'], auth: 'any', scopes: READ, minRole: 'member', endUser: true, body: queryMemoryBody, audit: QUERY_AUDIT, handler: query('/memory/query') }),
    route({ method: 'POST', path: '/memory/retrieve', summary: 'Alias of /memory/query', tags: ['memory'], auth: 'any', scopes: READ, minRole: 'member', endUser: true, body: queryMemoryBody, audit: QUERY_AUDIT, handler: query('/memory/retrieve') }),
    route({
      method: 'GET', path: '/memory/export', summary: "Export the end user's memories", tags: ['memory'], auth: 'any', scopes: READ, endUser: true, query: exportQuery,
      handler: async (ctx) => {
        const all = await memories.exportAll(owner(ctx));
        return { status: 200, body: { user_id: owner(ctx).endUserExternalId, memories: all.map(toMemoryResponse), total: all.length, generated_at: new Date().toISOString() } };
      },
    }),
    route({
      method: 'DELETE', path: '/memory/forget', summary: 'Delete selected memories', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      body: forgetBody, audit: { event: 'memory.forget', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const deleted = await memories.delete(owner(ctx), ctx.body.memory_ids, auditMeta(ctx), 'memory.forget');
        const skipped = ctx.body.memory_ids.filter((id) => !deleted.includes(id));
        return { status: 200, body: { deleted_ids: deleted, deleted_count: deleted.length, skipped_ids: skipped } };
      },
    }),
    route({
      method: 'GET', path: '/memory/{id}', summary: 'Fetch one memory', tags: ['memory'], auth: 'any', scopes: READ, endUser: true, params: memoryIdParam,
      handler: async (ctx) => ({ status: 200, body: toMemoryResponse(await memories.getOrThrow(owner(ctx), ctx.params.id)) }),
    }),
    route({
      method: 'PATCH', path: '/memory/{id}', summary: 'Update a memory', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      params: memoryIdParam, body: patchMemoryBody, audit: { event: 'memory.update', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const { text, source, event_type, tags, ttl_minutes, importance, metadata } = ctx.body;
        const patch = Object.fromEntries(Object.entries({ text, source, event_type, tags, ttl_minutes, importance, metadata }).filter(([, v]) => v !== undefined));
        ctx.audit.resourceId = String(ctx.params.id);
        return { status: 200, body: toMemoryResponse(await memories.update(owner(ctx), ctx.params.id, patch, auditMeta(ctx))) };
      },
    }),
    route({
      method: 'DELETE', path: '/memory/{id}', summary: 'Delete a memory', tags: ['memory'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: true,
      params: memoryIdParam, audit: { event: 'memory.delete', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        ctx.audit.resourceId = String(ctx.params.id);
        const deleted = await memories.delete(owner(ctx), [ctx.params.id], auditMeta(ctx));
        if (deleted.length === 0) throw notFound('Memory not found');
        return { status: 200, body: { deleted: true, id: ctx.params.id } };
      },
    }),

    // ------------------------------------------------------------ v1 data plane
    route({
      method: 'POST', path: '/v1/memory/add_turn', summary: 'Ingest one conversation turn', tags: ['v1'], auth: 'any', scopes: WRITE, minRole: 'member', endUser: 'v1',
      body: addTurnBody, audit: { event: 'memory.create', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        const b = ctx.body;
        const { role, text } = inferRole(b);
        const scope = owner(ctx);
        const idempotencyKey = `turn:${b.speaker ?? ''}|${b.occurred_at ?? ''}|${b.text}`;
        const outcome = await memories.add(scope, {
          text,
          source: b.source ?? null,
          tags: b.tags,
          metadata: { metadata: b.metadata ?? {}, speaker: b.speaker ?? null, source: b.source ?? null, role, episodic: true, ...(b.occurred_at ? { occurred_at: b.occurred_at } : {}) },
          deduplicate: false,
          memory_type: 'episodic',
          idempotency_key: idempotencyKey,
        }, auditMeta(ctx));
        const base = { embed_mode: b.sync_embed === false ? 'async' : 'sync', request_id: ctx.requestId, role };
        if (outcome.status === 'quota') return { status: 201, body: { ...base, memory_id: null, status: 'ok', processing_status: 'skipped', already_exists: false } };
        if (outcome.status === 'duplicate') return { status: 201, body: { ...base, memory_id: toV1MemoryId(outcome.existingId), status: 'stored', processing_status: 'skipped_replay', already_exists: true } };
        ctx.audit.resourceId = String(outcome.memory.id);
        return { status: 201, body: { ...base, memory_id: toV1MemoryId(outcome.memory.id), status: 'stored', processing_status: 'completed', already_exists: false } };
      },
    }),
    route({
      method: 'POST', path: '/v1/memory/query', summary: 'Plain semantic search', tags: ['v1'], auth: 'any', scopes: READ, minRole: 'member', endUser: 'v1', body: v1QueryBody,
      handler: async (ctx) => {
        const result = await memories.query(owner(ctx), { query: ctx.body.prompt, k: ctx.body.k });
        const found = ctx.body.types?.length ? result.memories.filter((m) => ctx.body.types?.includes(m.memoryType)) : result.memories;
        return { status: 200, body: { memories: found.map(toV1Item), used_fallback: result.degraded } };
      },
    }),
    route({
      method: 'POST', path: '/v1/memory/recall', summary: 'Prompt-ready context block', tags: ['v1'], auth: 'any', scopes: READ, minRole: 'member', endUser: 'v1', body: v1QueryBody,
      handler: async (ctx) => {
        const result = await memories.query(owner(ctx), { query: ctx.body.prompt, k: ctx.body.k });
        let found = result.memories;
        if (ctx.body.types?.length) found = found.filter((m) => ctx.body.types?.includes(m.memoryType));
        return { status: 200, body: { context: contextBlock(found), memories: found.map(toV1Item), used_fallback: result.degraded } };
      },
    }),
    route({
      method: 'GET', path: '/v1/memory/{tenant_id}/{user_id}/list', summary: "List an end user's memories, newest first", tags: ['v1'], auth: 'any', scopes: READ, endUser: 'v1',
      params: v1ListParams, query: v1ListQuery,
      handler: async (ctx) => {
        const { memories: items, total } = await memories.list(owner(ctx), { limit: ctx.query.limit, offset: ctx.query.offset });
        return { status: 200, body: { memories: items.map(toV1Item), total } };
      },
    }),
  ];
}
