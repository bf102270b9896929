import { z } from 'zod';
import { parseOutboundUrl } from '../../net/ssrf-guard.ts';
import { WEBHOOK_EVENTS } from '../../services/webhook-events.ts';
import { paginationQuery } from './org.ts';

const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'connection', 'transfer-encoding', 'user-agent']);

/** http/https only (anything else is 422); the DNS part of the SSRF guard runs in the service. */
export const outboundUrl = z.string().trim().min(1).max(2048).superRefine((value, ctx) => {
  try {
    parseOutboundUrl(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const eventsSchema = z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length).transform((events) => [...new Set(events)]);
const projectIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const retryConfig = z.object({
  /** retries after the first attempt (default 5: after 1 m, 5 m, 30 m, 2 h, 6 h) */
  max_attempts: z.number().int().min(0).max(10).optional(),
  /** base of an exponential schedule (doubled per retry, capped at 6 h) instead of the default one */
  backoff_seconds: z.number().int().min(1).max(21_600).optional(),
}).strict();
const signatureConfig = z.object({ algorithm: z.literal('sha256') }).strict();
const authHeaderName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name')
  .refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()) && !n.toLowerCase().startsWith('x-memorysync-'), 'this header is set by the server');
const authHeaderValue = z.string().min(1).max(4096).regex(/^[^\r\n\0]*$/, 'must not contain line breaks');

export const createWebhookBody = z.object({
  name: z.string().trim().min(1).max(128),
  url: outboundUrl,
  events: eventsSchema,
  project_id: projectIdSchema.nullish(),
  description: z.string().max(1000).nullish(),
  retry_config: retryConfig.optional(),
  signature_config: signatureConfig.optional(),
  auth_header_name: authHeaderName.optional(),
  auth_header_value: authHeaderValue.optional(),
}).strict().refine((b) => (b.auth_header_name === undefined) === (b.auth_header_value === undefined), {
  message: 'auth_header_name and auth_header_value go together', path: ['auth_header_value'],
});

export const updateWebhookBody = z.object({
  name: z.string().trim().min(1).max(128).optional(),
  url: outboundUrl.optional(),
  events: eventsSchema.optional(),
  project_id: projectIdSchema.nullish(),
  description: z.string().max(1000).nullish(),
  retry_config: retryConfig.optional(),
  signature_config: signatureConfig.optional(),
  auth_header_name: authHeaderName.nullish(),
  auth_header_value: authHeaderValue.nullish(),
  /** false disables the endpoint; true re-enables it and clears its failure count */
  active: z.boolean().optional(),
}).strict().refine((b) => Object.keys(b).length > 0, 'send at least one field')
  .refine((b) => b.auth_header_value == null || b.auth_header_name != null, { message: 'auth_header_value needs auth_header_name', path: ['auth_header_value'] });

export const webhookIdParam = z.object({ id: z.string().regex(/^wh_[a-f0-9]{16}$/, 'must be a wh_… id') });
export const deliveryIdParam = z.object({ id: z.string().regex(/^whd_[a-f0-9]{20}$/, 'must be a whd_… id') });
export const deliveriesQuery = z.object({
  status: z.enum(['pending', 'retrying', 'delivered', 'dead_lettered']).optional(),
  ...paginationQuery,
});

export const webhookResponse = z.object({
  id: z.string(), name: z.string(), url: z.string(), description: z.string().nullable(), events: z.array(z.string()),
  project_id: z.string().nullable(), retry_config: z.object({ max_attempts: z.number(), backoff_seconds: z.number().nullable() }),
  signature_config: z.object({ algorithm: z.string() }), auth_header_name: z.string().nullable(), has_auth_header: z.boolean(),
  active: z.boolean(), status: z.string(), disabled_reason: z.string().nullable(), consecutive_failures: z.number(),
  created_at: z.string(), updated_at: z.string(),
});
export const createdWebhookResponse = webhookResponse.extend({ secret: z.string() });

// ------------------------------------------------------------------ SIEM forwarders

export const SIEM_TYPES = ['generic_https', 'splunk_hec', 'datadog'] as const;

export const createForwarderBody = z.object({
  name: z.string().trim().min(1).max(128).optional(),
  type: z.enum(SIEM_TYPES),
  url: outboundUrl,
  token: z.string().min(1).max(4096).regex(/^[^\r\n\0]*$/, 'must not contain line breaks'),
  enabled: z.boolean().default(true),
}).strict();
export const updateForwarderBody = z.object({
  name: z.string().trim().min(1).max(128).optional(),
  url: outboundUrl.optional(),
  token: z.string().min(1).max(4096).regex(/^[^\r\n\0]*$/, 'must not contain line breaks').optional(),
  enabled: z.boolean().optional(),
}).strict().refine((b) => Object.keys(b).length > 0, 'send at least one field');
export const forwarderIdParam = z.object({ id: z.string().regex(/^siem_[a-f0-9]{16}$/, 'must be a siem_… id') });

export const deadLetterQuery = z.object({
  tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  forwarder_id: z.string().regex(/^siem_[a-f0-9]{16}$/).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const redriveDeadLettersBody = z.object({
  tenant_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  forwarder_id: z.string().regex(/^siem_[a-f0-9]{16}$/).optional(),
  limit: z.number().int().min(1).max(1000).default(100),
}).strict();
