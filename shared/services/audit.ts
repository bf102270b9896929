import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

export interface AuditEntry {
  tenantId: string | null;
  userId?: number | null;
  principal?: string | null;
  eventType: string;
  category: 'auth' | 'security' | 'data' | 'org' | 'api' | 'admin';
  resourceType?: string | null;
  resourceId?: string | null;
  action: string;
  status: 'success' | 'failure';
  statusCode?: number | null;
  ipAddress?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  payload?: Record<string, unknown>;
}

/** The audit_logs row of an entry. Never holds secrets or memory text. */
export function auditValues(entry: AuditEntry) {
  return {
    tenant_id: entry.tenantId,
    user_id: entry.userId ?? null,
    principal: entry.principal ?? null,
    event_type: entry.eventType,
    category: entry.category,
    resource_type: entry.resourceType ?? null,
    resource_id: entry.resourceId ?? null,
    action: entry.action,
    status: entry.status,
    status_code: entry.statusCode ?? null,
    ip_address: entry.ipAddress ?? null,
    user_agent: entry.userAgent?.slice(0, 512) ?? null,
    request_id: entry.requestId ?? null,
    payload_json: JSON.stringify(entry.payload ?? {}),
  };
}

/** Writes one audit row, inside the caller's transaction when given one. Never stores secrets or memory text. */
export async function writeAudit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await db.insertInto('audit_logs').values(auditValues(entry)).execute();
}
