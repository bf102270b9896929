import { z } from 'zod';
import { positiveIntegerPath } from './common.ts';

export const signupBody = z.object({
  email: z.email().max(254),
  password: z.string().min(8, 'password must be at least 8 characters').max(256),
  organization_name: z.string().trim().min(1).max(128).optional(),
  full_name: z.string().trim().max(128).optional(),
});
export const loginBody = z.object({ email: z.string().max(254), password: z.string().max(256), session_type: z.enum(['web', 'api', 'mobile', 'cli']).optional() });
export const refreshBody = z.object({ refresh_token: z.string().min(1).max(512) });

export const createProjectBody = z.object({ name: z.string().trim().min(1).max(128), description: z.string().max(1000).nullish() });
export const patchProjectBody = z.object({ name: z.string().trim().min(1).max(128).optional(), description: z.string().max(1000).nullish() });
export const projectIdParam = z.object({ project_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

export const createApiKeyBody = z.object({
  name: z.string().trim().min(1).max(128),
  environment: z.enum(['development', 'staging', 'production']).default('production'),
  scopes: z.array(z.enum(['memories:read', 'memories:write', 'projects:read', 'projects:write', 'keys:manage', 'webhooks:manage', 'audit:read'])).max(20).optional(),
  project_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).nullish(),
  rate_limit_tier: z.enum(['free', 'pro', 'enterprise', 'unlimited']).optional(),
  expires_in_days: z.number().int().min(1).max(3650).optional(),
});
export const apiKeyIdParam = z.object({ id: positiveIntegerPath(2_147_483_647) });
