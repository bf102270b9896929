import { z } from 'zod';
import { parseMemoryId } from '../../services/ids.ts';
import { REFUSAL_REASONS } from '../../services/refusal-policy.ts';
import { forgetBody, queryFilters } from './memory.ts';
import { DEFAULT_CLUSTER_THRESHOLD } from '../../services/memory-views.ts';

/** Scope fields the server never takes from a body; accepted and ignored for compatibility. */
const ignoredScopeFields = { user_id: z.unknown().optional(), project_id: z.unknown().optional(), environment: z.unknown().optional(), tenant_id: z.unknown().optional() };
const endUserField = { end_user_id: z.string().max(256).optional() };
const weightsSchema = z.object({ semantic: z.number().min(0).max(10).optional(), recency: z.number().min(0).max(10).optional(), importance: z.number().min(0).max(10).optional() });
const k = z.number().int().min(1);
const capK = (v: { k?: number; limit?: number }, fallback: number) => Math.min(v.k ?? v.limit ?? fallback, 100);

/** One memory id as /memory/* accepts them: an integer, "m_<n>" or a digit string. */
export const memoryIdValue = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const id = parseMemoryId(value);
  if (id === undefined) {
    ctx.addIssue({ code: 'custom', message: 'memory id must be an integer or "m_<integer>"' });
    return z.NEVER;
  }
  return id;
});

export const summarizeBody = z.object({
  memory_ids: forgetBody.shape.memory_ids.refine((ids) => ids.length <= 50, 'memory_ids must contain at most 50 ids'),
  max_sentences: z.number().int().min(1).max(20).optional(),
  store: z.boolean().optional(),
  ...endUserField,
  ...ignoredScopeFields,
});

export const composeBody = z
  .object({
    query: z.string().trim().min(1, 'query must not be empty').max(4000),
    token_budget: z.number().int().min(1).max(200_000).optional(),
    max_tokens: z.number().int().min(1).max(200_000).optional(),
    k: k.optional(),
    limit: k.optional(),
    filters: queryFilters.optional(),
    weights: weightsSchema.optional(),
    system_prompt: z.string().max(20_000).optional(),
    template: z.string().max(20_000).refine((t) => t.includes('{memories}'), 'template must contain the {memories} placeholder').optional(),
    ...endUserField,
    ...ignoredScopeFields,
  })
  .transform((v) => ({ ...v, k: capK(v, 10), token_budget: v.token_budget ?? v.max_tokens ?? 1000, filters: v.filters ?? {} }));

export const routedSearchBody = z
  .object({
    query: z.string().trim().max(4000).default(''),
    k: k.optional(),
    limit: k.optional(),
    filters: queryFilters.optional(),
    weights: weightsSchema.optional(),
    ...endUserField,
    ...ignoredScopeFields,
  })
  .refine((v) => v.query.length > 0 || (v.filters?.tags?.length ?? 0) > 0, { message: 'query: Field required (or give filters.tags)', path: ['query'] })
  .transform((v) => ({ ...v, k: capK(v, 10), filters: v.filters ?? {} }));

const unit = (fallback: number) => z.coerce.number().min(-1).max(1).default(fallback);

export const graphQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  threshold: unit(0.35),
  neighbours: z.coerce.number().int().min(1).max(20).default(5),
  end_user_id: z.string().optional(),
});

export const clustersQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(200),
  threshold: unit(DEFAULT_CLUSTER_THRESHOLD),
  min_size: z.coerce.number().int().min(1).max(100).default(2),
  end_user_id: z.string().optional(),
});

export const offsetPageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
  end_user_id: z.string().optional(),
});

export const endUserQuery = z.object({ end_user_id: z.string().optional() });

export const explainBody = z.object({
  query: z.string().trim().min(1, 'query must not be empty').max(4000),
  memory_id: memoryIdValue,
  weights: weightsSchema.optional(),
  filters: queryFilters.optional(),
  ...endUserField,
});

export const refusalsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
  reason: z.enum(REFUSAL_REASONS).optional(),
  end_user_id: z.string().max(256).optional(),
});

/** `?cursor=&limit=` of the /api/v2 list; the cursor is opaque to clients. */
export const cursorPageQuery = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  end_user_id: z.string().optional(),
});
