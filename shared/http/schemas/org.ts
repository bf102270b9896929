import { z } from 'zod';
import { REDRIVE_MAX_LIMIT, TASK_FAMILIES } from '../../ports/queue.ts';
import { PLANS, QUOTA_MODES } from '../../services/billing-service.ts';
import { isoDate } from './common.ts';

export const roleSchema = z.enum(['owner', 'admin', 'member', 'viewer']);
export const memberIdParam = z.object({ user_id: z.string().regex(/^usr_[a-f0-9]{16}$/, 'user_id must be a usr_… id') });
export const invitationIdParam = z.object({ id: z.coerce.number().int().positive().max(2_147_483_647) });
export const tenantIdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

export const updateMemberBody = z.object({ role: roleSchema }).strict();
export const createInvitationBody = z.object({ email: z.email().max(254), role: roleSchema.default('member') }).strict();
export const acceptInvitationBody = z.object({
  token: z.string().min(16).max(256),
  password: z.string().min(8, 'password must be at least 8 characters').max(256),
  full_name: z.string().trim().max(128).optional(),
});

export const updateBillingBody = z
  .object({ plan: z.enum(PLANS).optional(), quota_mode: z.enum(QUOTA_MODES).optional() })
  .strict()
  .refine((b) => b.plan !== undefined || b.quota_mode !== undefined, 'send plan and/or quota_mode');

/** `limit` (default 50, max 1000) + `offset`, the contract's list convention. */
export const paginationQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
};

const optionalFilter = z.string().trim().max(128).optional().transform((v) => v || undefined);
const optionalDate = isoDate.optional().or(z.literal('')).transform((v) => (v ? new Date(v) : undefined));

const auditLogShape = {
  event_type: optionalFilter,
  category: z.enum(['auth', 'security', 'data', 'org', 'api', 'admin', '']).optional().transform((v) => v || undefined),
  status: z.enum(['success', 'failure', '']).optional().transform((v) => (v || undefined) as 'success' | 'failure' | undefined),
  since: optionalDate,
  until: optionalDate,
  ...paginationQuery,
};
const sinceBeforeUntil = (q: { since?: Date; until?: Date }) => !q.since || !q.until || q.since <= q.until;

export const auditLogQuery = z.object(auditLogShape).refine(sinceBeforeUntil, { message: 'since must not be after until', path: ['since'] });
export const adminAuditLogQuery = z.object({ ...auditLogShape, tenant_id: optionalFilter }).refine(sinceBeforeUntil, { message: 'since must not be after until', path: ['since'] });

export const tenantListQuery = z.object({ status: z.enum(['active', 'suspended', 'deleting']).optional(), ...paginationQuery });
export const retentionRunBody = z.object({ tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional() }).strict();
export const reindexBody = z
  .object({ tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(), end_user_id: z.string().trim().min(1).max(256).optional() })
  .strict()
  .refine((b) => !b.end_user_id || b.tenant_id, { message: 'end_user_id needs tenant_id', path: ['end_user_id'] });
const redriveLimit = z.coerce.number().int().min(1).max(REDRIVE_MAX_LIMIT);
export const redriveBody = z.object({ family: z.enum(TASK_FAMILIES).optional(), limit: redriveLimit.optional() }).strict();
export const familyParam = z.object({ family: z.enum(TASK_FAMILIES) });
export const redriveQuery = z.object({ limit: redriveLimit.optional() }).strict();
const redriveOutcome = z.object({ family: z.enum(TASK_FAMILIES), moved: z.number().int(), remaining: z.number().int() });
export const redriveResponse = z.object({ status: z.literal('redriven'), redriven: z.number().int(), results: z.array(redriveOutcome) });
export const deadLetterCountsResponse = z.object({
  queue: z.string(),
  total: z.number().int(),
  families: z.array(z.object({ family: z.enum(TASK_FAMILIES), messages: z.number().int() })),
});
