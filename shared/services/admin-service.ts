import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { tablesInDependencyOrder } from '../db/introspect.ts';
import { conflict, DependencyError, notFound } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import { TASK_FAMILIES, type DeadLetterQueues, type RedriveOutcome, type Task, type TaskFamily } from '../ports/queue.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { writeAudit } from './audit.ts';
import { listAuditLogs, type AuditLogFilter } from './audit-log-reader.ts';
import { auditBase, principalKey, principalLabel, type AuditMeta } from './identity-service.ts';
import type { OutboxPort } from './memory-service.ts';
import type { Principal } from './scope.ts';

export interface AdminServiceDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  outbox: OutboxPort;
  vectors: VectorStore;
  tenantKeys: TenantKeyService;
  /** the queue's dead-letter tooling (`Queue.dlq`); absent when the DLQs are not known (SQS without SQS_DLQ_URLS) */
  deadLetters?: DeadLetterQueues;
  /** the queue adapter's kind, shown with the counts */
  queueKind?: string;
}

/** Who performed an admin action: an operator session, or the CLI on the operator's machine. */
export interface AdminActor {
  principal: Principal | null;
  meta: AuditMeta;
}

/** Audit rows are kept when a tenant is deleted (they hold no memory text) — see docs/org-admin.md. */
const KEPT_ON_TENANT_DELETE = new Set(['audit_logs', 'tenants']);

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

/**
 * Platform-operator work across tenants: listing, suspension, deletion with crypto-shredding, the
 * cross-tenant audit log and triggers for the retention, reindex and dead-letter jobs. Every action
 * writes one audit row (category `admin`).
 */
export class AdminService {
  constructor(private readonly deps: AdminServiceDeps) {}

  async listTenants(filter: { status?: string; limit: number; offset: number }) {
    let q = this.deps.db.selectFrom('tenants as t');
    if (filter.status) q = q.where('t.status', '=', filter.status);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    const count = (table: 'users' | 'projects' | 'api_keys' | 'memories', extra = sql``) =>
      sql<number>`(select count(*) from ${sql.table(table)} x where x.tenant_id = t.id ${extra})`;
    const rows = await q
      .select(['t.id', 't.name', 't.status', 't.plan', 't.quota_mode', 't.created_at', 't.suspended_at'])
      .select([
        count('users', sql`and x.kind = 'account'`).as('accounts'),
        count('users', sql`and x.kind = 'end_user'`).as('end_users'),
        count('projects').as('projects'),
        count('api_keys', sql`and x.revoked_at is null`).as('active_api_keys'),
        count('memories').as('memories'),
      ])
      .orderBy('t.created_at', 'desc')
      .orderBy('t.id')
      .limit(filter.limit)
      .offset(filter.offset)
      .execute();
    return {
      items: rows.map((r) => ({
        id: r.id, tenant_id: r.id, name: r.name, status: r.status, plan: r.plan, quota_mode: r.quota_mode,
        created_at: iso(r.created_at), suspended_at: iso(r.suspended_at),
        counts: { accounts: Number(r.accounts), end_users: Number(r.end_users), projects: Number(r.projects), active_api_keys: Number(r.active_api_keys), memories: Number(r.memories) },
      })),
      total: Number(total?.n ?? 0),
      limit: filter.limit,
      offset: filter.offset,
    };
  }

  /** Suspended tenants' keys and sessions get 403 TENANT_SUSPENDED from the next request on. */
  async setSuspended(tenantId: string, suspended: boolean, actor: AdminActor) {
    this.assertNotOwnTenant(tenantId, actor, suspended ? 'suspend' : 'resume');
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('tenants')
        .set({ status: suspended ? 'suspended' : 'active', suspended_at: suspended ? this.deps.clock.now() : null })
        .where('id', '=', tenantId)
        .where('status', 'in', ['active', 'suspended'])
        .returning(['id', 'status', 'suspended_at'])
        .executeTakeFirst();
      if (!updated) throw notFound('Tenant not found');
      await this.audit(trx, actor, tenantId, suspended ? 'admin.tenant_suspended' : 'admin.tenant_resumed', suspended ? 'suspend' : 'resume', 200);
      return updated;
    });
    await this.forgetPrincipals(tenantId);
    return { id: row.id, tenant_id: row.id, status: row.status, suspended_at: iso(row.suspended_at) };
  }

  /**
   * Deletes a tenant. The wrapped data key is destroyed first and committed on its own, so even if a
   * later step fails every ciphertext of the tenant (memory text, summaries, blind tokens' key) is
   * already unreadable; then vectors of every end-user namespace, the rows of every tenant table
   * (children first) and cached entries go. Safe to run again after a partial failure.
   */
  async deleteTenant(tenantId: string, actor: AdminActor) {
    this.assertNotOwnTenant(tenantId, actor, 'delete');
    const shredded = await this.deps.db
      .updateTable('tenants')
      .set({ data_key_wrapped: null, status: 'deleting' })
      .where('id', '=', tenantId)
      .returning('id')
      .executeTakeFirst();
    if (!shredded) throw notFound('Tenant not found');
    this.deps.tenantKeys.forget(tenantId);
    const cacheKeys = await this.cacheKeysOf(tenantId);
    await this.deps.cache.del(...cacheKeys);

    const users = await this.deps.db.selectFrom('users').select('id').where('tenant_id', '=', tenantId).execute();
    let vectors = 0;
    for (const u of users) vectors += await this.deps.vectors.deleteNamespace(namespaceForUser(u.id));

    const rows: Record<string, number> = {};
    await this.deps.db.transaction().execute(async (trx) => {
      const tables = (await tablesInDependencyOrder(trx)).filter((t) => !KEPT_ON_TENANT_DELETE.has(t.name) && t.columns.some((c) => c.name === 'tenant_id'));
      for (const t of tables.reverse()) {
        const res = await sql`delete from ${sql.table(t.name)} where tenant_id = ${tenantId}`.execute(trx);
        const n = Number(res.numAffectedRows ?? 0);
        if (n) rows[t.name] = n;
      }
      await trx.deleteFrom('tenants').where('id', '=', tenantId).execute();
      rows.tenants = 1;
      await this.audit(trx, actor, tenantId, 'admin.tenant_deleted', 'delete', 200, { rows, vectors });
    });
    // Cached principals were dropped above; drop again in case a request re-cached one meanwhile. Then every
    // entry under the tenant's key prefixes (query results, generations, webhook-subscription flags, …).
    await this.deps.cache.del(...cacheKeys);
    let prefixed = 0;
    let cachePending = false;
    for (const prefix of tenantCachePrefixes(tenantId)) {
      const n = await this.deps.cache.deletePrefix(prefix);
      if (n === undefined) cachePending = true;
      else prefixed += n;
    }
    return { deleted: true, tenant_id: tenantId, data_key_destroyed: true, rows, vectors_deleted: vectors, vector_namespaces: users.length, cache_entries: cacheKeys.length + prefixed, cache_pending: cachePending };
  }

  /**
   * Audits an operator action that has no business write of its own: cross-tenant reads, and CLI
   * commands (principal `cli`). Pass the caller's transaction when the action has one.
   */
  async record(actor: AdminActor, entry: { eventType: string; action: string; tenantId?: string | null; payload?: Record<string, unknown> }, trx: Kysely<Database> = this.deps.db) {
    await this.audit(trx, actor, entry.tenantId ?? null, entry.eventType, entry.action, 200, entry.payload ?? {});
  }

  async auditLogs(filter: AuditLogFilter) {
    return listAuditLogs(this.deps.db, filter);
  }

  /** Queues one retention sweep (family `retention`); the retention worker does the work. */
  async runRetention(actor: AdminActor, input: { tenant_id?: string }) {
    if (input.tenant_id) await this.tenantOrThrow(input.tenant_id);
    return this.enqueue(actor, this.task('retention', 'sweep', input.tenant_id ?? null, { tenantId: input.tenant_id ?? null }), 'admin.retention_run');
  }

  /** Queues a re-embedding of every memory, of one tenant, or of one end user (family `embedding`, type `reindex`). */
  async reindex(actor: AdminActor, input: { tenant_id?: string; end_user_id?: string }) {
    let userId: number | undefined;
    if (input.tenant_id) await this.tenantOrThrow(input.tenant_id);
    if (input.end_user_id) {
      const user = await this.deps.db.selectFrom('users').select('id').where('tenant_id', '=', input.tenant_id!).where('external_id', '=', `${input.tenant_id}:${input.end_user_id}`).executeTakeFirst();
      if (!user) throw notFound('End user not found in that tenant');
      userId = user.id;
    }
    const payload = { ...(input.tenant_id ? { tenantId: input.tenant_id } : {}), ...(userId !== undefined ? { userId } : {}) };
    return this.enqueue(actor, this.task('embedding', 'reindex', input.tenant_id ?? null, payload), 'admin.reindex');
  }

  /** Dead letters per task family (approximate on SQS). The route audits the read. */
  async deadLetterCounts() {
    const families = await this.dlq().counts();
    return { queue: this.deps.queueKind ?? 'unknown', total: families.reduce((n, f) => n + f.messages, 0), families };
  }

  /**
   * Moves up to `limit` dead letters of one family, or of every family, back to their queues, and
   * writes one audit row with what moved. Re-driven tasks keep their ids, so one that already ran
   * (a duplicate parked by a crash) is acknowledged by the worker's ledger without running again.
   */
  async redriveDeadLetters(actor: AdminActor, input: { family?: TaskFamily; limit?: number }) {
    const dlq = this.dlq();
    const results: RedriveOutcome[] = [];
    for (const family of input.family ? [input.family] : TASK_FAMILIES) {
      results.push(await dlq.redrive(family, input.limit !== undefined ? { limit: input.limit } : {}));
    }
    const redriven = results.reduce((n, r) => n + r.moved, 0);
    await this.audit(this.deps.db, actor, null, 'admin.dead_letters_redriven', 'redrive', 200, {
      family: input.family ?? null, limit: input.limit ?? null, redriven, results: results.filter((r) => r.moved > 0 || input.family),
    });
    return { status: 'redriven' as const, redriven, results };
  }

  private dlq(): DeadLetterQueues {
    if (!this.deps.deadLetters) throw new DependencyError('queue', 'dead-letter queues are not configured (SQS_DLQ_URLS)');
    return this.deps.deadLetters;
  }

  // ---------------------------------------------------------------- internals

  private task(family: TaskFamily, type: string, tenantId: string | null, payload: Record<string, unknown>): Task {
    return { id: randomUUID(), family, type, tenantId, payload, createdAt: this.deps.clock.now().toISOString() };
  }

  private async enqueue(actor: AdminActor, task: Task, eventType: string) {
    await this.deps.db.transaction().execute(async (trx) => {
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, actor, task.tenantId, eventType, 'trigger', 202, { task_id: task.id, family: task.family, type: task.type, payload: task.payload });
    });
    await this.deps.outbox.relay([task.id]);
    return { status: 'queued', task_id: task.id, family: task.family, type: task.type, payload: task.payload };
  }

  private async audit(trx: Kysely<Database>, actor: AdminActor, tenantId: string | null, eventType: string, action: string, statusCode: number, payload: Record<string, unknown> = {}) {
    await writeAudit(trx, {
      ...auditBase(actor.meta), tenantId, userId: actor.principal?.accountId ?? null,
      principal: actor.principal ? principalLabel(actor.principal) : 'cli', eventType, category: 'admin',
      resourceType: 'tenant', resourceId: tenantId, action, status: 'success', statusCode, payload,
    });
    actor.meta.audit.written = true;
  }

  private assertNotOwnTenant(tenantId: string, actor: AdminActor, action: string) {
    if (actor.principal?.tenantId === tenantId) throw conflict(`You cannot ${action} the organization you are signed in to`);
  }

  private async tenantOrThrow(tenantId: string) {
    const row = await this.deps.db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!row) throw notFound('Tenant not found');
  }

  /** Every cache entry named after this tenant's rows: principals, projects, end users, plan, query generations. */
  private async cacheKeysOf(tenantId: string): Promise<string[]> {
    const [keys, sessions, projects, users, scimTokens, oauthApps] = await Promise.all([
      this.deps.db.selectFrom('api_keys').select('key_hash').where('tenant_id', '=', tenantId).execute(),
      this.deps.db.selectFrom('refresh_tokens').select('session_id').distinct().where('tenant_id', '=', tenantId).execute(),
      this.deps.db.selectFrom('projects').select('id').where('tenant_id', '=', tenantId).execute(),
      this.deps.db.selectFrom('users').select(['id', 'external_id']).where('tenant_id', '=', tenantId).execute(),
      this.deps.db.selectFrom('scim_tokens').select('token_hash').where('tenant_id', '=', tenantId).execute(),
      this.deps.db.selectFrom('oauth_apps').select('id').where('tenant_id', '=', tenantId).execute(),
    ]);
    return [
      ...keys.map((k) => principalKey('key', k.key_hash)),
      ...sessions.map((s) => principalKey('session', s.session_id)),
      // SCIM provisioning principals and live OAuth apps (key formats of ScimService and OAuthService)
      ...scimTokens.map((t) => `principal:scim:${t.token_hash}`),
      ...oauthApps.map((a) => `oauth:app:${a.id}`),
      ...projects.map((p) => `project:${tenantId}:${p.id}`),
      ...users.filter((u) => u.external_id).map((u) => `enduser:${u.external_id}`),
      ...users.map((u) => `qgen:${tenantId}:${u.id}`),
      `tenant-plan:${tenantId}`,
    ];
  }

  private async forgetPrincipals(tenantId: string) {
    const keys = (await this.cacheKeysOf(tenantId)).filter((k) => k.startsWith('principal:'));
    if (keys.length) await this.deps.cache.del(...keys);
  }
}

/**
 * Cache key prefixes that hold only this tenant's entries (see the services' key builders: `q:` query
 * results, `qgen:` generations, `whsub:` webhook-subscription flags, `project:`, `enduser:` ids).
 */
export function tenantCachePrefixes(tenantId: string): string[] {
  return ['q', 'qgen', 'whsub', 'project', 'enduser'].map((kind) => `${kind}:${tenantId}:`);
}
