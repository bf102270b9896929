import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

export interface AuditLogFilter {
  /** required for tenant callers; only the platform operator may omit it */
  tenantId?: string;
  eventType?: string;
  category?: string;
  status?: 'success' | 'failure';
  since?: Date;
  until?: Date;
  limit: number;
  offset: number;
}

/**
 * Reads audit rows newest first with filters and offset pagination. Tenant routes always pass their
 * own tenant id; the answer never includes another tenant's rows.
 */
export async function listAuditLogs(db: Kysely<Database>, filter: AuditLogFilter) {
  let q = db.selectFrom('audit_logs as a').leftJoin('users as u', 'u.id', 'a.user_id');
  if (filter.tenantId !== undefined) q = q.where('a.tenant_id', '=', filter.tenantId);
  if (filter.eventType) q = q.where('a.event_type', '=', filter.eventType);
  if (filter.category) q = q.where('a.category', '=', filter.category);
  if (filter.status) q = q.where('a.status', '=', filter.status);
  if (filter.since) q = q.where('a.created_at', '>=', filter.since);
  if (filter.until) q = q.where('a.created_at', '<=', filter.until);
  const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const rows = await q
    .select(['a.id', 'a.tenant_id', 'u.public_id as user_public_id', 'a.principal', 'a.event_type', 'a.category', 'a.resource_type', 'a.resource_id', 'a.action', 'a.status', 'a.status_code', 'a.ip_address', 'a.user_agent', 'a.request_id', 'a.payload_json', 'a.created_at'])
    .orderBy('a.created_at', 'desc')
    .orderBy('a.id', 'desc')
    .limit(filter.limit)
    .offset(filter.offset)
    .execute();
  return {
    items: rows.map((r) => ({
      id: Number(r.id),
      tenant_id: r.tenant_id,
      // users of a deleted account or of another tenant never leak their internal id
      user_id: r.user_public_id ?? null,
      principal: r.principal,
      event_type: r.event_type,
      category: r.category,
      resource_type: r.resource_type,
      resource_id: r.resource_id,
      action: r.action,
      status: r.status,
      status_code: r.status_code,
      ip_address: r.ip_address,
      user_agent: r.user_agent,
      request_id: r.request_id,
      payload: r.payload_json,
      created_at: new Date(r.created_at).toISOString(),
    })),
    total: Number(total?.n ?? 0),
    limit: filter.limit,
    offset: filter.offset,
  };
}
