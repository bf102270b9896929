import { z } from 'zod';

export const MIN_TEXT_CHARS = 10;
export const MAX_TEXT_CHARS = 50_000;
export const MAX_TAGS = 50;

export const tagsSchema = z.array(z.string().trim().min(1).max(64)).max(MAX_TAGS);
export const metadataSchema = z.record(z.string(), z.unknown()).refine((m) => JSON.stringify(m).length <= 16_384, 'metadata must serialise to at most 16 KiB');
export const importanceSchema = z.number().min(0).max(1);
export const ttlMinutesSchema = z.number().int().min(1).max(60 * 24 * 365 * 10);
export const labelSchema = z.string().trim().max(128);
/** An ISO-8601 date PostgreSQL can store (years 1-9999); JavaScript accepts far wider ones. */
export const isoDate = z.string().max(64).refine((s) => {
  const t = Date.parse(s);
  if (Number.isNaN(t)) return false;
  const year = new Date(t).getUTCFullYear();
  return year >= 1 && year <= 9999;
}, 'must be an ISO-8601 date between years 1 and 9999');
/** A path id is plain digits: `1e3`, ` 7` or `0x1f` would otherwise coerce to a number. */
export const positiveIntegerPath = (max: number) =>
  z.string().regex(/^\d{1,16}$/, 'must be a positive integer').transform(Number).pipe(z.number().int().positive().max(max));
export const memoryIdParam = z.object({ id: positiveIntegerPath(Number.MAX_SAFE_INTEGER) });
export const errorEnvelope = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.unknown()).optional() }),
  detail: z.unknown().optional(),
  request_id: z.string(),
});
