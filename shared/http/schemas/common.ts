import { z } from 'zod';

export const MIN_TEXT_CHARS = 10;
export const MAX_TEXT_CHARS = 50_000;
export const MAX_TAGS = 50;

export const tagsSchema = z.array(z.string().trim().min(1).max(64)).max(MAX_TAGS);
export const metadataSchema = z.record(z.string(), z.unknown()).refine((m) => JSON.stringify(m).length <= 16_384, 'metadata must serialise to at most 16 KiB');
export const importanceSchema = z.number().min(0).max(1);
export const ttlMinutesSchema = z.number().int().min(1).max(60 * 24 * 365 * 10);
export const labelSchema = z.string().trim().max(128);
export const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 date');
/** A path id is plain digits: `1e3`, ` 7` or `0x1f` would otherwise coerce to a number. */
export const positiveIntegerPath = (max: number) =>
  z.string().regex(/^\d{1,16}$/, 'must be a positive integer').transform(Number).pipe(z.number().int().positive().max(max));
export const memoryIdParam = z.object({ id: positiveIntegerPath(Number.MAX_SAFE_INTEGER) });
export const errorEnvelope = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.unknown()).optional() }),
  detail: z.unknown().optional(),
  request_id: z.string(),
});
