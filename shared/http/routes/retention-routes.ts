import { z } from 'zod';
import type { RetentionPolicyService } from '../../services/retention-policies.ts';
import { projectIdParam } from '../schemas/identity.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const retentionBody = z.object({
  max_age_days: z.number().int().min(1).max(36_500).nullable(),
  grace_days: z.number().int().min(0).max(365).optional(),
}).strict();

/** Per-project retention policies (admin); the hourly retention sweep applies them. */
export function retentionRoutes(policies: RetentionPolicyService): RouteDefinition[] {
  return [
    route({
      method: 'GET', path: '/org/projects/{project_id}/retention', summary: "Read a project's retention policy (defaults when none is set)", tags: ['org'],
      auth: 'any', scopes: ['projects:read'], minRole: 'admin', params: projectIdParam,
      handler: async (ctx) => ({ status: 200, body: await policies.get(ctx.scope!, ctx.params.project_id) }),
    }),
    route({
      method: 'PUT', path: '/org/projects/{project_id}/retention', summary: "Set a project's retention policy: max age of its memories and the soft-delete grace", tags: ['org'],
      auth: 'any', scopes: ['projects:write'], minRole: 'admin', params: projectIdParam, body: retentionBody,
      audit: { event: 'project.retention_updated', resource: 'project', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await policies.put(ctx.scope!, ctx.params.project_id, ctx.body, auditMeta(ctx)) }),
    }),
  ];
}
