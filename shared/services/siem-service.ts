import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, SiemForwardersTable } from '../db/schema.ts';
import { notFound } from '../errors.ts';
import { open, seal } from '../crypto/aead.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import type { OutboundHttp } from '../net/ssrf-guard.ts';
import { assertOutboundTarget } from './outbound-target.ts';
import type { Clock } from '../ports/clock.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { Scope } from './scope.ts';

export type SiemType = 'generic_https' | 'splunk_hec' | 'datadog';
type ForwarderRow = Selectable<SiemForwardersTable>;

export interface SiemServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  tenantKeys: TenantKeyService;
  outbound: OutboundHttp;
}

const tokenAad = (tenantId: string, id: string) => `siem-token:${tenantId}:${id}`;
const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

export function toForwarderResponse(row: ForwarderRow) {
  return {
    id: row.id, name: row.name, type: row.type, url: row.url, enabled: row.enabled, has_token: true,
    cursor: Number(row.cursor), batch_in_flight: row.batch_id, last_success_at: iso(row.last_success_at), last_error: row.last_error,
    forwarded_count: Number(row.forwarded_count), dead_letter_count: row.dead_letter_count,
    created_at: iso(row.created_at), updated_at: iso(row.updated_at),
  };
}

/**
 * SIEM forwarder configuration of a tenant (`/org/siem/forwarders`). The target token is sealed with
 * the tenant's data key and never returned. A new forwarder starts at the beginning of the tenant's
 * audit log, so every row reaches the SIEM.
 */
export class SiemService {
  constructor(private readonly deps: SiemServiceDeps) {}

  async create(scope: Scope, input: { name?: string; type: SiemType; url: string; token: string; enabled: boolean }, meta: AuditMeta) {
    await assertOutboundTarget(this.deps.outbound, input.url);
    const id = `siem_${randomBytes(8).toString('hex')}`;
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('siem_forwarders')
        .values({
          id, tenant_id: scope.tenantId, name: input.name ?? input.type, type: input.type, url: input.url,
          token_ciphertext: seal(keys.dataKey, input.token, tokenAad(scope.tenantId, id)), enabled: input.enabled,
          created_by: scope.principal.accountId, created_at: now, updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit(trx, scope, meta, 'siem_forwarder.created', 'create', id, 201, { type: input.type, host: new URL(input.url).host });
      return toForwarderResponse(row);
    });
  }

  async list(scope: Scope) {
    const rows = await this.deps.db.selectFrom('siem_forwarders').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('created_at', 'desc').orderBy('id').execute();
    return { items: rows.map(toForwarderResponse), total: rows.length };
  }

  async get(scope: Scope, id: string) {
    const row = await this.deps.db.selectFrom('siem_forwarders').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('SIEM forwarder not found');
    return toForwarderResponse(row);
  }

  async update(scope: Scope, id: string, input: { name?: string; url?: string; token?: string; enabled?: boolean }, meta: AuditMeta) {
    if (input.url !== undefined) await assertOutboundTarget(this.deps.outbound, input.url);
    const keys = input.token ? await this.deps.tenantKeys.forTenant(scope.tenantId) : undefined;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('siem_forwarders')
        .set({
          updated_at: this.deps.clock.now(),
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(input.url !== undefined ? { url: input.url } : {}),
          ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
          ...(keys && input.token ? { token_ciphertext: seal(keys.dataKey, input.token, tokenAad(scope.tenantId, id)) } : {}),
        })
        .where('tenant_id', '=', scope.tenantId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw notFound('SIEM forwarder not found');
      await this.audit(trx, scope, meta, 'siem_forwarder.updated', 'update', id, 200, { fields: Object.keys(input) });
      return toForwarderResponse(row);
    });
  }

  async delete(scope: Scope, id: string, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.deleteFrom('siem_forwarders').where('tenant_id', '=', scope.tenantId).where('id', '=', id).returning('id').executeTakeFirst();
      if (!row) throw notFound('SIEM forwarder not found');
      await this.audit(trx, scope, meta, 'siem_forwarder.deleted', 'delete', id, 200);
      return { id, deleted: true };
    });
  }

  /** The forwarder's token, opened for the forwarding worker. */
  async token(row: Pick<ForwarderRow, 'tenant_id' | 'id' | 'token_ciphertext'>): Promise<string> {
    const keys = await this.deps.tenantKeys.forTenant(row.tenant_id);
    return open(keys.dataKey, row.token_ciphertext, tokenAad(row.tenant_id, row.id)).toString('utf8');
  }

  private async audit(trx: Kysely<Database>, scope: Scope, meta: AuditMeta, eventType: string, action: string, resourceId: string, statusCode: number, payload: Record<string, unknown> = {}) {
    await writeAudit(trx, {
      ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal),
      eventType, category: 'security', resourceType: 'siem_forwarder', resourceId, action, status: 'success', statusCode, payload,
    });
    meta.audit.written = true;
  }
}
