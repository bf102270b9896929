import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database, MemoryRow } from '../db/schema.ts';
import { AppError, notFound } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Task } from '../ports/queue.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { MemoryService, OutboxPort } from './memory-service.ts';
import type { RefusalLog } from './refusal-log.ts';
import type { EndUserScope } from './scope.ts';

export interface MemoryLifecycleDeps {
  db: Kysely<Database>;
  vectors: VectorStore;
  cache: Cache;
  clock: Clock;
  outbox: OutboxPort;
  memories: MemoryService;
  refusals: RefusalLog;
  /** days a soft-deleted memory can still be restored (contract default 7) */
  graceDays?: number;
  /** days an archived memory is kept before retention may soft-delete it (contract default 60) */
  archivedRetentionDays?: number;
}

export type LifecycleAction = 'archive' | 'restore' | 'soft_delete';

const DAY_MS = 86_400_000;
/** memories re-embedded per task by /memory/refresh */
const REFRESH_BATCH = 100;
const WARM_AFTER_DAYS = 30;
const COLD_AFTER_DAYS = 180;

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

/**
 * Retention states of a memory and the maintenance routes around them. Transitions (archive, restore,
 * soft-delete) each write a memory_events row, an audit row and a vector-metadata sync task in one
 * transaction, then sync the index at once (the task is the fallback). Purges delete rows and vectors.
 */
export class MemoryLifecycleService {
  private readonly graceMs: number;
  private readonly archivedMs: number;

  constructor(private readonly deps: MemoryLifecycleDeps) {
    this.graceMs = (deps.graceDays ?? 7) * DAY_MS;
    this.archivedMs = (deps.archivedRetentionDays ?? 60) * DAY_MS;
  }

  async transition(scope: EndUserScope, id: number, action: LifecycleAction, meta: AuditMeta) {
    const now = this.deps.clock.now();
    const syncTaskId = randomUUID();
    const { from, to } = await this.deps.db.transaction().execute(async (trx) => {
      const row = await this.owned(trx, scope).where('id', '=', id).forUpdate().executeTakeFirst();
      if (!row || row.retention_status === 'purged' || row.retention_status === 'hard_delete_pending') throw notFound('Memory not found');
      const change = await this.plan(trx, scope, row, action, now);
      await trx.updateTable('memories').set({ ...change.set, retention_status: change.to, updated_at: now }).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', '=', id).execute();
      await trx.insertInto('memory_events').values({ tenant_id: scope.tenantId, memory_id: id, event_type: change.event, data: JSON.stringify({ from: row.retention_status, to: change.to, ...change.eventData }) }).execute();
      const webhook = action === 'soft_delete'
        ? this.deps.memories.webhookTask(scope, 'memory.deleted', { ids: [id], soft: true })
        : this.deps.memories.webhookTask(scope, 'memory.updated', { id, fields: ['retention_status'], retention_status: change.to });
      await this.deps.outbox.enqueue(trx, [this.deps.memories.embedTask(scope, syncTaskId, 'sync-metadata', id), webhook]);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: `memory.${change.event}`, category: 'data', resourceType: 'memory', resourceId: String(id), action, status: 'success', statusCode: 200, payload: { from: row.retention_status, to: change.to } });
      meta.audit.written = true;
      return { from: row.retention_status, to: change.to };
    });
    await this.syncIndex(scope, [id], [syncTaskId]);
    await this.deps.memories.invalidateQueries(scope);
    return { id, from, to, ...(await this.lifecycle(scope, id)) };
  }

  /** State, timestamps and the memory_events history of one memory (any retention state). */
  async lifecycle(scope: EndUserScope, id: number) {
    const row = await this.owned(this.deps.db, scope).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('Memory not found');
    const events = await this.deps.db
      .selectFrom('memory_events')
      .select(['event_type', 'data', 'created_at'])
      .where('tenant_id', '=', scope.tenantId)
      .where('memory_id', '=', id)
      .orderBy('id')
      .limit(500)
      .execute();
    const now = this.deps.clock.now();
    const restorable = row.retention_status === 'archived' || (row.retention_status === 'soft_deleted' && !!row.hard_delete_at && new Date(row.hard_delete_at) > now);
    return {
      memory_id: Number(row.id),
      retention_status: row.retention_status,
      restorable,
      restore_deadline: row.retention_status === 'soft_deleted' ? iso(row.hard_delete_at) : null,
      searchable: row.retention_status === 'active' && (!row.expires_at || new Date(row.expires_at) > now),
      timestamps: {
        created_at: iso(row.created_at),
        updated_at: iso(row.updated_at),
        last_accessed_at: iso(row.last_accessed_at),
        expires_at: iso(row.expires_at),
        archive_at: iso(row.archive_at),
        retention_expires_at: iso(row.retention_expires_at),
        deleted_at: iso(row.deleted_at),
        hard_delete_at: iso(row.hard_delete_at),
      },
      history: events.map((e) => ({ event: e.event_type, at: iso(e.created_at), data: e.data ?? {} })),
    };
  }

  /**
   * POST /memory/purge: hard-deletes the end user's soft-deleted memories (grace or not — the owner asks)
   * and those past their TTL, with their vectors, through the same delete path as DELETE /memory/{id}.
   */
  async purge(scope: EndUserScope, meta: AuditMeta) {
    const now = this.deps.clock.now();
    const rows = await this.owned(this.deps.db, scope)
      .clearSelect()
      .select(['id', 'retention_status'])
      .where((eb) => eb.or([eb('retention_status', '=', 'soft_deleted'), eb.and([eb('expires_at', 'is not', null), eb('expires_at', '<=', now)])]))
      .execute();
    const ids = rows.map((r) => Number(r.id));
    const deleted = await this.deps.memories.delete(scope, ids, meta, 'memory.purge', 'purged');
    const softDeleted = rows.filter((r) => r.retention_status === 'soft_deleted' && deleted.includes(Number(r.id))).length;
    return { purged: deleted.length, soft_deleted: softDeleted, expired: deleted.length - softDeleted, memory_ids: deleted };
  }

  /**
   * DELETE /memory/user/purge: everything of the resolved end user in every project — memory rows, their
   * events and links, refusal-log rows, the vector namespace and the cached query results. The users row
   * (tenant-scoped external id only) stays so that concurrent requests resolving this end user keep working.
   */
  async purgeUser(scope: EndUserScope, meta: AuditMeta) {
    const taskId = randomUUID();
    const counts = await this.deps.db.transaction().execute(async (trx) => {
      const owned = trx.selectFrom('memories').select('id').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId);
      const ids = (await owned.execute()).map((r) => Number(r.id));
      const events = await trx.deleteFrom('memory_events').where('tenant_id', '=', scope.tenantId).where('memory_id', 'in', owned).executeTakeFirst();
      const links = await trx.deleteFrom('memory_links').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).executeTakeFirst();
      const deleted = await trx.deleteFrom('memories').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).returning(['project_id']).execute();
      const perProject = new Map<string, number>();
      for (const r of deleted) if (r.project_id) perProject.set(r.project_id, (perProject.get(r.project_id) ?? 0) + 1);
      for (const [projectId, n] of perProject) {
        await trx.updateTable('projects').set({ memory_count: sql`greatest(memory_count - ${n}, 0)` }).where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).execute();
      }
      const refusals = await this.deps.refusals.deleteForUser(trx, scope);
      const tasks: Task[] = [];
      // The vectors go right after commit; this task is the fallback if the index is unreachable then.
      if (ids.length) tasks.push({ id: taskId, family: 'embedding', tenantId: scope.tenantId, type: 'delete-vectors', payload: { userId: scope.userId, memoryIds: ids }, createdAt: this.deps.clock.now().toISOString() });
      if (ids.length) tasks.push(this.deps.memories.webhookTask(scope, 'memory.deleted', { ids, user_purge: true }));
      await this.deps.outbox.enqueue(trx, tasks);
      const result = { memories: deleted.length, memory_events: Number(events.numDeletedRows ?? 0), memory_links: Number(links.numDeletedRows ?? 0), refusals };
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.user_purge', category: 'data', resourceType: 'end_user', resourceId: scope.endUserExternalId, action: 'delete', status: 'success', statusCode: 200, payload: result });
      meta.audit.written = true;
      return { ...result, hasVectorsTask: ids.length > 0 };
    });
    let vectors = 0;
    let vectorsPending = false;
    try {
      vectors = await this.deps.vectors.deleteNamespace(namespaceForUser(scope.userId));
      if (counts.hasVectorsTask) await this.deps.outbox.settle([taskId]);
    } catch {
      vectorsPending = true;
      if (counts.hasVectorsTask) await this.deps.outbox.relay([taskId]);
    }
    // Cached query results (memory ids and scores) go by prefix, then the generation counter by name.
    const queryEntries = await this.deps.cache.deletePrefix(`q:${scope.tenantId}:${scope.userId}:`);
    const cacheKeys = [`qgen:${scope.tenantId}:${scope.userId}`];
    await this.deps.cache.del(...cacheKeys);
    const { hasVectorsTask: _, ...rows } = counts;
    return {
      end_user_id: scope.endUserExternalId,
      deleted: { ...rows, vectors, cache_keys: cacheKeys.length + (queryEntries ?? 0) },
      vectors_pending: vectorsPending,
      // the cache could not be scanned (unreachable): its leftovers expire within CACHE_TTL_SECONDS
      cache_pending: queryEntries === undefined,
    };
  }

  /**
   * POST /memory/refresh: recomputes tiers from last access (hot → warm after 30 days, cold after 180) and
   * queues a re-embedding of every memory in scope through the outbox (batches of 100), e.g. after an
   * embedding model change. Queries keep using the current vectors until the new ones land.
   */
  async refresh(scope: EndUserScope, meta: AuditMeta) {
    const now = this.deps.clock.now();
    const warm = new Date(now.getTime() - WARM_AFTER_DAYS * DAY_MS);
    const cold = new Date(now.getTime() - COLD_AFTER_DAYS * DAY_MS);
    const { ids, taskIds, tiersChanged } = await this.deps.db.transaction().execute(async (trx) => {
      let tierUpdate = trx
        .updateTable('memories')
        .set({ tier: sql`case when last_accessed_at < ${cold} then 'cold' when last_accessed_at < ${warm} then 'warm' else 'hot' end` })
        .where('tenant_id', '=', scope.tenantId)
        .where('user_id', '=', scope.userId)
        .where(sql<boolean>`tier is distinct from (case when last_accessed_at < ${cold} then 'cold' when last_accessed_at < ${warm} then 'warm' else 'hot' end)`);
      if (scope.projectId) tierUpdate = tierUpdate.where('project_id', '=', scope.projectId);
      const tiers = await tierUpdate.executeTakeFirst();
      let pending = trx
        .updateTable('memories')
        .set({ embedding_status: 'pending' })
        .where('tenant_id', '=', scope.tenantId)
        .where('user_id', '=', scope.userId)
        .where('retention_status', 'in', ['active', 'archived', 'soft_deleted']);
      if (scope.projectId) pending = pending.where('project_id', '=', scope.projectId);
      const rows = await pending.returning('id').execute();
      const memoryIds = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
      const tasks: Task[] = [];
      for (let i = 0; i < memoryIds.length; i += REFRESH_BATCH) {
        tasks.push(this.deps.memories.embedTask(scope, randomUUID(), 'embed', memoryIds.slice(i, i + REFRESH_BATCH)));
      }
      await this.deps.outbox.enqueue(trx, tasks);
      const changed = Number(tiers.numUpdatedRows ?? 0);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.refresh', category: 'data', resourceType: 'memory', resourceId: null, action: 'refresh', status: 'success', statusCode: 202, payload: { queued: memoryIds.length, tasks: tasks.length, tiers_changed: changed } });
      meta.audit.written = true;
      return { ids: memoryIds, taskIds: tasks.map((t) => t.id), tiersChanged: changed };
    });
    await this.deps.outbox.relay(taskIds);
    await this.deps.memories.invalidateQueries(scope);
    return { queued: ids.length, tasks: taskIds.length, tiers_changed: tiersChanged };
  }

  // ------------------------------------------------------------------ internals

  /** Rows of this end user (and project, when one is resolved), in any retention state. */
  private owned(db: Kysely<Database>, scope: EndUserScope) {
    let q = db.selectFrom('memories').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId);
    if (scope.projectId) q = q.where('project_id', '=', scope.projectId);
    return q;
  }

  private async plan(trx: Kysely<Database>, scope: EndUserScope, row: MemoryRow, action: LifecycleAction, now: Date) {
    const state = row.retention_status;
    const refuse = (message: string, code = 'INVALID_STATE_TRANSITION') => new AppError(code, 409, message);
    if (action === 'archive') {
      if (state !== 'active') throw refuse(`Only active memories can be archived (this one is ${state})`);
      return { to: 'archived', event: 'archived', eventData: {}, set: { archive_at: now, retention_expires_at: new Date(now.getTime() + this.archivedMs) } };
    }
    if (action === 'soft_delete') {
      if (state !== 'active' && state !== 'archived') throw refuse(`Only active or archived memories can be soft-deleted (this one is ${state})`);
      // The dedupe slot is released so the same text can be stored again; restore takes it back if still free.
      return { to: 'soft_deleted', event: 'soft_deleted', eventData: { had_dedupe_key: row.dedupe_key !== null }, set: { deleted_at: now, hard_delete_at: new Date(now.getTime() + this.graceMs), dedupe_key: null } };
    }
    if (state === 'archived') {
      return { to: 'active', event: 'restored', eventData: {}, set: { archive_at: null, retention_expires_at: null } };
    }
    if (state !== 'soft_deleted') throw refuse(`Only archived or soft-deleted memories can be restored (this one is ${state})`);
    if (!row.hard_delete_at || new Date(row.hard_delete_at) <= now) {
      throw refuse('The restore grace period of this soft-deleted memory has ended', 'RESTORE_GRACE_EXPIRED');
    }
    const last = await trx.selectFrom('memory_events').select('data').where('tenant_id', '=', scope.tenantId).where('memory_id', '=', Number(row.id)).where('event_type', '=', 'soft_deleted').orderBy('id', 'desc').limit(1).executeTakeFirst();
    let dedupeKey: string | null = null;
    if ((last?.data as { had_dedupe_key?: boolean } | undefined)?.had_dedupe_key) {
      const clash = await trx.selectFrom('memories').select('id').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('dedupe_key', '=', row.content_hash).executeTakeFirst();
      dedupeKey = clash ? null : row.content_hash;
    }
    return { to: 'active', event: 'restored', eventData: { dedupe_restored: dedupeKey !== null }, set: { deleted_at: null, hard_delete_at: null, dedupe_key: dedupeKey } };
  }

  private async syncIndex(scope: EndUserScope, ids: number[], taskIds: string[]) {
    try {
      for (const id of ids) await this.deps.memories.syncVectorMetadata(scope, id);
      await this.deps.outbox.settle(taskIds);
    } catch {
      await this.deps.outbox.relay(taskIds);
    }
  }
}
