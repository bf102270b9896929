import { z } from 'zod';
import { parseMemoryId } from '../../services/ids.ts';
import { importanceSchema, isoDate, labelSchema, MAX_TEXT_CHARS, metadataSchema, MIN_TEXT_CHARS, tagsSchema, ttlMinutesSchema } from './common.ts';

const textField = z.string().max(MAX_TEXT_CHARS, `text must be at most ${MAX_TEXT_CHARS} characters`);

/** Fields the server never takes from a body; accepted and ignored for compatibility. */
const ignoredScopeFields = { user_id: z.unknown().optional(), project_id: z.unknown().optional(), environment: z.unknown().optional(), tenant_id: z.unknown().optional() };

const memoryFields = {
  text: textField.optional(),
  content: textField.optional(),
  source: labelSchema.nullish(),
  event_type: labelSchema.nullish(),
  tags: tagsSchema.optional(),
  ttl_minutes: ttlMinutesSchema.nullish(),
  importance: importanceSchema.optional(),
  metadata: metadataSchema.optional(),
};

const withText = <T extends { text?: string; content?: string }>(v: T, ctx: z.RefinementCtx) => {
  const text = (v.text ?? v.content ?? '').trim();
  if (v.text === undefined && v.content === undefined) {
    ctx.addIssue({ code: 'custom', path: ['text'], message: 'Field required' });
    return z.NEVER;
  }
  if (text.length < MIN_TEXT_CHARS) {
    ctx.addIssue({ code: 'custom', path: ['text'], message: `text must be at least ${MIN_TEXT_CHARS} characters` });
    return z.NEVER;
  }
  return { ...v, text };
};

export const addMemoryBody = z
  .object({ ...memoryFields, deduplicate: z.boolean().optional(), session_id: z.string().max(256).optional(), end_user_id: z.string().max(256).optional(), ...ignoredScopeFields })
  .transform(withText);

export const bulkItemSchema = z
  .object({ ...memoryFields, end_user_id: z.string().max(256).optional(), ...ignoredScopeFields })
  .transform(withText);

export const bulkAddBody = z.object({
  items: z.array(z.unknown()).min(1, 'items must contain at least 1 item').max(50, 'items must contain at most 50 items'),
  deduplicate: z.boolean().default(true),
  end_user_id: z.string().max(256).optional(),
});

export const queryFilters = z
  .object({
    tags: tagsSchema.optional(),
    sources: z.array(labelSchema).max(50).optional(),
    source: labelSchema.optional(),
    event_type: labelSchema.optional(),
    memory_type: labelSchema.optional(),
    since: isoDate.optional(),
    until: isoDate.optional(),
    include_summaries: z.boolean().optional(),
    tier: z.enum(['hot', 'warm', 'cold']).optional(),
  })
  .refine((f) => !f.since || !f.until || Date.parse(f.since) <= Date.parse(f.until), { message: 'since must not be after until', path: ['since'] });

export const queryMemoryBody = z
  .object({
    query: z.string().trim().min(1, 'query must not be empty').max(4000),
    k: z.number().int().min(1).optional(),
    limit: z.number().int().min(1).optional(),
    filters: queryFilters.optional(),
    tier: z.enum(['hot', 'warm', 'cold']).optional(),
    weights: z.object({ semantic: z.number().min(0).max(10).optional(), recency: z.number().min(0).max(10).optional(), importance: z.number().min(0).max(10).optional() }).optional(),
    session_id: z.string().max(256).nullish(),
    traversal_depth: z.number().int().min(1).max(3).optional(),
    end_user_id: z.string().max(256).optional(),
    ...ignoredScopeFields,
  })
  .transform((v) => ({ ...v, k: Math.min(v.k ?? v.limit ?? 5, 100), filters: { ...(v.filters ?? {}), ...(v.tier ? { tier: v.tier } : {}) } }));

export const patchMemoryBody = z
  .object({ ...memoryFields, ...ignoredScopeFields })
  .transform((v, ctx) => {
    const text = v.text ?? v.content;
    if (text !== undefined && text.trim().length < MIN_TEXT_CHARS) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: `text must be at least ${MIN_TEXT_CHARS} characters` });
      return z.NEVER;
    }
    return { ...v, text: text?.trim() };
  });

export const forgetBody = z.object({
  memory_ids: z
    .array(z.union([z.number(), z.string()]))
    .min(1, 'memory_ids must not be empty')
    .max(1000)
    .transform((ids, ctx) => {
      const parsed = ids.map(parseMemoryId);
      const bad = parsed.findIndex((x) => x === undefined);
      if (bad >= 0) {
        ctx.addIssue({ code: 'custom', path: [bad], message: 'memory id must be an integer or "m_<integer>"' });
        return z.NEVER;
      }
      return [...new Set(parsed as number[])];
    }),
  end_user_id: z.string().max(256).optional(),
});

export const exportQuery = z.object({ end_user_id: z.string().optional() });

// ---------------------------------------------------------------- v1 data plane

const v1Scope = { tenant_id: z.string().max(128).optional(), user_id: z.union([z.string().max(256), z.number()]).optional() };

export const addTurnBody = z.object({
  ...v1Scope,
  text: z.string({ error: "'text' must be a non-empty string" }).max(MAX_TEXT_CHARS).refine((t) => t.trim().length > 0, "'text' must be a non-empty string"),
  source: labelSchema.nullish(),
  speaker: z.string().max(512).nullish(),
  role: z.string().max(32).nullish(),
  occurred_at: isoDate.nullish(),
  metadata: metadataSchema.optional(),
  sync_embed: z.boolean().optional(),
  tags: tagsSchema.optional(),
});

export const v1QueryBody = z.object({
  ...v1Scope,
  prompt: z.string().trim().min(1, "'prompt' must be a non-empty string").max(4000),
  k: z.number().int().min(1).max(100).default(8),
  types: z.array(z.string().max(64)).max(20).optional(),
});

export const v1ListParams = z.object({ tenant_id: z.string().min(1).max(128), user_id: z.string().min(1).max(256) });
export const v1ListQuery = z.object({ limit: z.coerce.number().int().min(0).max(100_000).default(50), offset: z.coerce.number().int().min(0).default(0) });
