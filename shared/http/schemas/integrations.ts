import { z } from 'zod';
import { PROVIDERS } from '../../integrations/types.ts';
import { outboundUrl } from './webhooks.ts';

const projectId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const endUserId = z.string().trim().min(1).max(256).regex(/^[^\u0000-\u001f]+$/);

export const providerParam = z.object({ provider: z.enum(PROVIDERS) });
export const connectionIdParam = z.object({ id: z.string().regex(/^int_[0-9a-f]{24}$/, 'not an integration id') });
export const crawlJobIdParam = z.object({ id: z.string().regex(/^crj_[0-9a-f]{24}$/, 'not a crawl job id') });

/**
 * With `access_token`: the caller brings a provider token (stored sealed), the connection is made at
 * once. Without it: the provider's authorization-code flow starts and the answer is its authorization URL.
 */
export const connectBody = z.object({
  access_token: z.string().min(1).max(4096).regex(/^[^\s]+$/, 'must not contain whitespace').optional(),
  end_user_id: endUserId,
  project_id: projectId.nullish(),
  options: z.object({
    /** GitHub: `owner/name` repositories to sync instead of every repository of the token */
    repos: z.array(z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/)).max(100).optional(),
  }).strict().default({}),
}).strict();

export const authorizationStartResponse = z.object({
  /** send the end user's browser here; the provider redirects back to the callback route */
  authorization_url: z.string(),
  state: z.string(),
  expires_in: z.number().int(),
});

/** The provider's redirect back (RFC 6749 §4.1.2): `code` + `state`, or `error` + `state`. */
export const oauthCallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
  // Microsoft and Google add these; they are not used
  scope: z.string().max(2048).optional(),
  session_state: z.string().max(512).optional(),
  authuser: z.string().max(16).optional(),
  prompt: z.string().max(64).optional(),
  hd: z.string().max(256).optional(),
});

export const disconnectQuery = z.object({ purge: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') });

export const crawlJobBody = z.object({
  url: outboundUrl,
  max_pages: z.number().int().min(1).max(100).default(20),
  end_user_id: endUserId,
  project_id: projectId.nullish(),
}).strict();

export const connectionResponse = z.object({
  id: z.string(), provider: z.enum(PROVIDERS), project_id: z.string().nullable(), end_user_id: z.string(),
  auth_method: z.enum(['token', 'oauth']), token_expires_at: z.string().nullable(),
  status: z.enum(['active', 'syncing', 'rate_limited', 'error']), options: z.record(z.string(), z.unknown()),
  last_sync_started_at: z.string().nullable(), last_sync_at: z.string().nullable(), next_sync_at: z.string().nullable(), last_error: z.string().nullable(),
  counts: z.object({ objects_synced: z.number(), memories_created: z.number() }), initial_sync_complete: z.boolean(), created_at: z.string().nullable(),
});

export const crawlJobResponse = z.object({
  id: z.string(), url: z.string(), max_pages: z.number(), project_id: z.string().nullable(), end_user_id: z.string(),
  status: z.enum(['queued', 'running', 'completed', 'failed']), pages_fetched: z.number(), pages_skipped: z.number(), memories_created: z.number(),
  skipped: z.array(z.object({ url: z.string(), reason: z.string() })), last_error: z.string().nullable(),
  created_at: z.string().nullable(), started_at: z.string().nullable(), finished_at: z.string().nullable(),
});
