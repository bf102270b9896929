import type { AdminService } from '../../services/admin-service.ts';
import { adminAuditLogQuery, deadLetterCountsResponse, familyParam, redriveBody, redriveQuery, redriveResponse, reindexBody, retentionRunBody, tenantIdParam, tenantListQuery } from '../schemas/org.ts';
import type { RouteContext, RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const actor = (ctx: RouteContext) => ({ principal: ctx.principal, meta: auditMeta(ctx) });

/** Platform-operator routes (accounts listed in PLATFORM_ADMIN_EMAILS). Every call is audited, reads included. */
export function adminRoutes(admin: AdminService): RouteDefinition[] {
  return [
    route({
      method: 'GET', path: '/admin/tenants', summary: 'All tenants with row counts', tags: ['admin'], auth: 'platform-admin', query: tenantListQuery,
      handler: async (ctx) => {
        const result = await admin.listTenants(ctx.query);
        await admin.record(actor(ctx), { eventType: 'admin.tenants_listed', action: 'read', payload: { total: result.total } });
        return { status: 200, body: result };
      },
    }),
    route({
      method: 'POST', path: '/admin/tenants/{id}/suspend', summary: "Suspend a tenant: its keys and sessions get 403 TENANT_SUSPENDED", tags: ['admin'], auth: 'platform-admin', bodyFormat: 'none', params: tenantIdParam,
      audit: { event: 'admin.tenant_suspended', resource: 'tenant', category: 'admin' },
      handler: async (ctx) => ({ status: 200, body: await admin.setSuspended(ctx.params.id, true, actor(ctx)) }),
    }),
    route({
      method: 'POST', path: '/admin/tenants/{id}/resume', summary: 'Lift a suspension', tags: ['admin'], auth: 'platform-admin', bodyFormat: 'none', params: tenantIdParam,
      audit: { event: 'admin.tenant_resumed', resource: 'tenant', category: 'admin' },
      handler: async (ctx) => ({ status: 200, body: await admin.setSuspended(ctx.params.id, false, actor(ctx)) }),
    }),
    route({
      method: 'DELETE', path: '/admin/tenants/{id}', summary: "Delete a tenant: destroys its data key first (crypto-shredding), then rows, vectors and cache", tags: ['admin'], auth: 'platform-admin', params: tenantIdParam,
      audit: { event: 'admin.tenant_deleted', resource: 'tenant', category: 'admin' },
      handler: async (ctx) => ({ status: 200, body: await admin.deleteTenant(ctx.params.id, actor(ctx)) }),
    }),
    route({
      method: 'GET', path: '/admin/audit-logs', summary: 'The audit log of every tenant, newest first', tags: ['admin'], auth: 'platform-admin', query: adminAuditLogQuery,
      handler: async (ctx) => {
        const q = ctx.query;
        const result = await admin.auditLogs({ tenantId: q.tenant_id, eventType: q.event_type, category: q.category, status: q.status, since: q.since, until: q.until, limit: q.limit, offset: q.offset });
        await admin.record(actor(ctx), { eventType: 'admin.audit_logs_read', action: 'read', tenantId: q.tenant_id ?? null, payload: { total: result.total } });
        return { status: 200, body: result };
      },
    }),
    route({
      method: 'POST', path: '/admin/retention/run', summary: 'Queue a retention sweep (all tenants or one)', tags: ['admin'], auth: 'platform-admin', body: retentionRunBody,
      audit: { event: 'admin.retention_run', resource: 'task', category: 'admin' },
      handler: async (ctx) => ({ status: 202, body: await admin.runRetention(actor(ctx), ctx.body) }),
    }),
    route({
      method: 'POST', path: '/admin/reindex', summary: 'Queue a re-embedding of all memories, one tenant or one end user', tags: ['admin'], auth: 'platform-admin', body: reindexBody,
      audit: { event: 'admin.reindex', resource: 'task', category: 'admin' },
      handler: async (ctx) => ({ status: 202, body: await admin.reindex(actor(ctx), ctx.body) }),
    }),
    route({
      method: 'GET', path: '/admin/dead-letters', summary: 'Dead-lettered tasks per task family (approximate on SQS)', tags: ['admin'], auth: 'platform-admin',
      responses: { 200: deadLetterCountsResponse },
      handler: async (ctx) => {
        const result = await admin.deadLetterCounts();
        await admin.record(actor(ctx), { eventType: 'admin.dead_letters_listed', action: 'read', payload: { total: result.total } });
        return { status: 200, body: result };
      },
    }),
    route({
      method: 'POST', path: '/admin/dead-letters/{family}/redrive', summary: "Move up to `limit` (default 100) of a family's dead letters back to its queue", tags: ['admin'], auth: 'platform-admin',
      params: familyParam, query: redriveQuery, bodyFormat: 'none', responses: { 200: redriveResponse },
      audit: { event: 'admin.dead_letters_redriven', resource: 'task', category: 'admin' },
      handler: async (ctx) => ({ status: 200, body: await admin.redriveDeadLetters(actor(ctx), { family: ctx.params.family, limit: ctx.query.limit }) }),
    }),
    route({
      method: 'POST', path: '/admin/dead-letters/redrive', summary: 'Re-drive the dead letters of one family (body `family`) or of all of them, up to `limit` per family', tags: ['admin'], auth: 'platform-admin', body: redriveBody,
      responses: { 200: redriveResponse },
      audit: { event: 'admin.dead_letters_redriven', resource: 'task', category: 'admin' },
      handler: async (ctx) => ({ status: 200, body: await admin.redriveDeadLetters(actor(ctx), ctx.body) }),
    }),
  ];
}
