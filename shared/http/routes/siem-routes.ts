import { z } from 'zod';
import { writeAudit } from '../../services/audit.ts';
import { auditBase, principalLabel } from '../../services/identity-service.ts';
import type { SiemService } from '../../services/siem-service.ts';
import { listSiemDeadLetters, redriveSiemDeadLetters, type SiemForwardingDeps } from '../../tasks/siem-forwarding.ts';
import { createForwarderBody, deadLetterQuery, forwarderIdParam, redriveDeadLettersBody, updateForwarderBody } from '../schemas/webhooks.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const forwarder = z.record(z.string(), z.unknown());
const admin = { tags: ['siem'], auth: 'session' as const, minRole: 'admin' as const };

/**
 * SIEM forwarder configuration for tenant admins (`/org/siem/forwarders`) and the platform operator's
 * dead-letter listing and re-drive (`/admin/siem/dead-letters`).
 */
export function siemRoutes(siem: SiemService, forwarding: SiemForwardingDeps): RouteDefinition[] {
  return [
    route({
      ...admin, method: 'POST', path: '/org/siem/forwarders', summary: 'Forward the audit log to a SIEM (generic HTTPS, Splunk HEC, Datadog)',
      body: createForwarderBody, responses: { 201: forwarder }, audit: { event: 'siem_forwarder.created', resource: 'siem_forwarder', category: 'security' },
      handler: async (ctx) => ({ status: 201, body: await siem.create(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      ...admin, method: 'GET', path: '/org/siem/forwarders', summary: "The tenant's SIEM forwarders (tokens never returned)", responses: { 200: z.object({ items: z.array(forwarder), total: z.number() }) },
      handler: async (ctx) => ({ status: 200, body: await siem.list(ctx.scope!) }),
    }),
    route({
      ...admin, method: 'GET', path: '/org/siem/forwarders/{id}', summary: 'One SIEM forwarder with its cursor and last outcome', params: forwarderIdParam, responses: { 200: forwarder },
      handler: async (ctx) => ({ status: 200, body: await siem.get(ctx.scope!, ctx.params.id) }),
    }),
    route({
      ...admin, method: 'PATCH', path: '/org/siem/forwarders/{id}', summary: 'Change URL, token, name or enabled', params: forwarderIdParam, body: updateForwarderBody,
      responses: { 200: forwarder }, audit: { event: 'siem_forwarder.updated', resource: 'siem_forwarder', category: 'security' },
      handler: async (ctx) => ({ status: 200, body: await siem.update(ctx.scope!, ctx.params.id, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      ...admin, method: 'DELETE', path: '/org/siem/forwarders/{id}', summary: 'Stop forwarding and delete the forwarder', params: forwarderIdParam,
      responses: { 200: z.object({ id: z.string(), deleted: z.literal(true) }) }, audit: { event: 'siem_forwarder.deleted', resource: 'siem_forwarder', category: 'security' },
      handler: async (ctx) => ({ status: 200, body: await siem.delete(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/admin/siem/dead-letters', summary: 'SIEM batches that exhausted their retries (stored in the object store)', tags: ['admin'], auth: 'platform-admin',
      query: deadLetterQuery, responses: { 200: z.object({ items: z.array(z.record(z.string(), z.unknown())), total: z.number() }) },
      handler: async (ctx) => {
        const q = ctx.query;
        const result = await listSiemDeadLetters(forwarding, { tenantId: q.tenant_id, forwarderId: q.forwarder_id, limit: q.limit });
        await writeAudit(forwarding.db.kysely, {
          ...auditBase(auditMeta(ctx)), tenantId: null, userId: ctx.principal!.accountId, principal: principalLabel(ctx.principal!),
          eventType: 'admin.siem_dead_letters_read', category: 'admin', action: 'read', status: 'success', statusCode: 200, payload: { tenant_id: q.tenant_id ?? null, total: result.total },
        });
        return { status: 200, body: result };
      },
    }),
    route({
      method: 'POST', path: '/admin/siem/dead-letters/redrive', summary: 'Re-send dead-lettered SIEM batches; those that land are deleted', tags: ['admin'], auth: 'platform-admin',
      body: redriveDeadLettersBody, responses: { 200: z.object({ redriven: z.number(), failed: z.number(), remaining: z.number() }).passthrough() },
      audit: { event: 'admin.siem_dead_letters_redriven', resource: 'siem_dead_letter', category: 'admin' },
      handler: async (ctx) => {
        const b = ctx.body;
        const result = await redriveSiemDeadLetters(forwarding, { tenantId: b.tenant_id, forwarderId: b.forwarder_id, limit: b.limit });
        ctx.audit.payload = { redriven: result.redriven, failed: result.failed, remaining: result.remaining };
        return { status: 200, body: result };
      },
    }),
  ];
}
