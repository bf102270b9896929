import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { enqueueTasks } from '../outbox/index.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Task } from '../ports/queue.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import type { TaskHandler } from './worker-runtime.ts';

export interface RetentionDeps {
  db: Kysely<Database>;
  vectors: VectorStore;
  cache: Cache;
  clock: Clock;
  /** sends outbox rows after commit (the vector deletes' fallback task) */
  relay?: { relayNow(taskIds: string[]): Promise<unknown> };
}

/** Restore window of a memory soft-deleted by a project policy without its own `grace_days` (API.md 4.1). */
export const DEFAULT_GRACE_DAYS = 7;
/** rows handled per statement; a sweep loops until nothing is left */
const SWEEP_BATCH = 500;
const DAY_MS = 86_400_000;

export interface RetentionSweepResult {
  /** rows past `expires_at` (ttl_minutes), deleted with their vectors */
  expired: number;
  /** rows older than their project's `max_age_days`, moved to soft_deleted */
  aged: number;
  /** soft-deleted rows past `hard_delete_at`, deleted with their vectors */
  purged: number;
}

interface Doomed {
  id: number;
  tenant_id: string;
  user_id: number;
  project_id: string | null;
}

/**
 * One retention sweep, of one tenant or (tenantId null) of every tenant, each row handled inside
 * its own tenant: every statement carries the tenant of the rows it touches, and every step writes
 * `memory_events` rows.
 *
 * 1. TTL expiry: `expires_at` past → row, vector and cached query results deleted (event `expired`).
 * 2. Project policies (`retention_policies`): memories older than `max_age_days` → `soft_deleted`
 *    with `hard_delete_at` = now + `grace_days` (event `soft_deleted`, reason `retention_policy`); the
 *    default project's policy also covers memories stored without a project.
 * 3. Grace over: `soft_deleted` with `hard_delete_at` past → row, vector, cache purged (event `purged`).
 */
export async function sweepRetention(deps: RetentionDeps, options: { tenantId?: string | null } = {}): Promise<RetentionSweepResult> {
  const now = deps.clock.now();
  const tenantId = options.tenantId ?? null;
  const expired = await deleteWhile(deps, tenantId, 'expired', (q) => q.where('expires_at', 'is not', null).where('expires_at', '<=', now).where('retention_status', '<>', 'purged'));
  const aged = await applyPolicies(deps, tenantId, now);
  const purged = await deleteWhile(deps, tenantId, 'purged', (q) => q.where('retention_status', 'in', ['soft_deleted', 'hard_delete_pending']).where('hard_delete_at', 'is not', null).where('hard_delete_at', '<=', now));
  return { expired, aged, purged };
}

type MemorySelect = ReturnType<typeof selectDoomed>;
const selectDoomed = (db: Kysely<Database>) => db.selectFrom('memories').select(['id', 'tenant_id', 'user_id', 'project_id']);

/** Deletes matching rows batch by batch: rows, events and the vector-delete fallback task commit together. */
async function deleteWhile(deps: RetentionDeps, tenantId: string | null, event: 'expired' | 'purged', where: (q: MemorySelect) => MemorySelect): Promise<number> {
  let total = 0;
  for (;;) {
    let q = where(selectDoomed(deps.db));
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    const batch = (await q.orderBy('id').limit(SWEEP_BATCH).execute()).map((r) => ({ ...r, id: Number(r.id) })) as Doomed[];
    if (batch.length === 0) return total;
    total += await hardDelete(deps, batch, event);
    if (batch.length < SWEEP_BATCH) return total;
  }
}

/** Hard-deletes rows (grouped per tenant): memory rows, events, project counts, vectors, query caches. */
export async function hardDelete(deps: RetentionDeps, rows: Doomed[], event: 'expired' | 'purged'): Promise<number> {
  const now = deps.clock.now();
  const byTenant = groupBy(rows, (r) => r.tenant_id);
  const deleted: Doomed[] = [];
  const taskIds: string[] = [];
  for (const [tenantId, tenantRows] of byTenant) {
    await deps.db.transaction().execute(async (trx) => {
      const gone = await trx
        .deleteFrom('memories')
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', tenantRows.map((r) => r.id))
        .returning(['id', 'tenant_id', 'user_id', 'project_id'])
        .execute();
      if (gone.length === 0) return;
      const doomed = gone.map((r) => ({ ...r, id: Number(r.id) }));
      await trx.insertInto('memory_events').values(doomed.map((r) => ({ tenant_id: tenantId, memory_id: r.id, event_type: event, data: JSON.stringify({ by: 'retention-sweep' }), created_at: now }))).execute();
      const perProject = new Map<string, number>();
      for (const r of doomed) if (r.project_id) perProject.set(r.project_id, (perProject.get(r.project_id) ?? 0) + 1);
      for (const [projectId, n] of perProject) {
        await trx.updateTable('projects').set({ memory_count: sql`greatest(memory_count - ${n}, 0)` }).where('tenant_id', '=', tenantId).where('id', '=', projectId).execute();
      }
      // If the direct vector delete below fails, the embedding worker deletes them from this task.
      const tasks: Task[] = [...groupBy(doomed, (r) => r.user_id)].map(([userId, userRows]) => ({
        id: randomUUID(), family: 'embedding', tenantId, type: 'delete-vectors', payload: { userId, memoryIds: userRows.map((r) => r.id) }, createdAt: now.toISOString(),
      }));
      await enqueueTasks(trx, tasks);
      taskIds.push(...tasks.map((t) => t.id));
      deleted.push(...doomed);
    });
  }
  await afterCommit(deps, deleted, taskIds, async (userId, ids) => {
    await deps.vectors.delete(namespaceForUser(userId), ids);
  });
  return deleted.length;
}

/** Project policies: memories past max_age_days become soft_deleted with the policy's grace. */
async function applyPolicies(deps: RetentionDeps, tenantId: string | null, now: Date): Promise<number> {
  let policies = deps.db
    .selectFrom('retention_policies')
    .innerJoin('projects', (j) => j.onRef('projects.id', '=', 'retention_policies.project_id').onRef('projects.tenant_id', '=', 'retention_policies.tenant_id'))
    .select(['retention_policies.project_id', 'retention_policies.tenant_id', 'retention_policies.max_age_days', 'retention_policies.grace_days', 'projects.is_default'])
    .where('retention_policies.max_age_days', 'is not', null);
  if (tenantId) policies = policies.where('retention_policies.tenant_id', '=', tenantId);
  let total = 0;
  for (const policy of await policies.execute()) {
    const cutoff = new Date(now.getTime() - policy.max_age_days! * DAY_MS);
    const hardDeleteAt = new Date(now.getTime() + policy.grace_days * DAY_MS);
    for (;;) {
      const moved = await deps.db.transaction().execute(async (trx) => {
        const candidates = await trx
          .selectFrom('memories')
          .select(['id', 'retention_status'])
          .where('tenant_id', '=', policy.tenant_id)
          // memories stored without a project belong to the tenant's default project
          .where((eb) => (policy.is_default ? eb.or([eb('project_id', '=', policy.project_id), eb('project_id', 'is', null)]) : eb('project_id', '=', policy.project_id)))
          .where('retention_status', 'in', ['active', 'archived'])
          .where('created_at', '<', cutoff)
          .orderBy('id')
          .limit(SWEEP_BATCH)
          .forUpdate()
          .execute();
        if (candidates.length === 0) return [];
        const rows = await trx
          .updateTable('memories')
          .set({ retention_status: 'soft_deleted', deleted_at: now, hard_delete_at: hardDeleteAt, dedupe_key: null, updated_at: now })
          .where('tenant_id', '=', policy.tenant_id)
          .where('id', 'in', candidates.map((c) => c.id))
          .returning(['id', 'tenant_id', 'user_id', 'project_id'])
          .execute();
        const from = new Map(candidates.map((c) => [Number(c.id), c.retention_status]));
        await trx.insertInto('memory_events').values(rows.map((r) => ({
          tenant_id: policy.tenant_id, memory_id: Number(r.id), event_type: 'soft_deleted',
          data: JSON.stringify({ from: from.get(Number(r.id)), to: 'soft_deleted', reason: 'retention_policy', max_age_days: policy.max_age_days, grace_days: policy.grace_days }),
          created_at: now,
        }))).execute();
        return rows.map((r) => ({ ...r, id: Number(r.id) }));
      });
      if (moved.length === 0) break;
      total += moved.length;
      await afterCommit(deps, moved, [], async (userId, ids) => {
        for (const id of ids) await deps.vectors.updateMetadata(namespaceForUser(userId), id, { retentionStatus: 'soft_deleted' });
      });
      if (moved.length < SWEEP_BATCH) break;
    }
  }
  return total;
}

/** After commit: the index change per end user, then their query caches; a failed index change leaves the task to the worker. */
async function afterCommit(deps: RetentionDeps, rows: Doomed[], taskIds: string[], indexChange: (userId: number, ids: number[]) => Promise<void>) {
  let indexFailed = false;
  for (const [userId, userRows] of groupBy(rows, (r) => r.user_id)) {
    try {
      await indexChange(userId, userRows.map((r) => r.id));
    } catch {
      indexFailed = true;
    }
    await deps.cache.incr(`qgen:${userRows[0].tenant_id}:${userId}`, 86_400).catch(() => {});
  }
  if (!taskIds.length) return;
  if (indexFailed) {
    await deps.relay?.relayNow(taskIds).catch(() => {}); // else the outbox sweep sends them
    return;
  }
  // Done inline: the fallback tasks are marked relayed and processed so nothing ever sends them.
  await deps.db.transaction().execute(async (trx) => {
    const rows = await trx.updateTable('outbox').set({ relayed_at: deps.clock.now() }).where('task_id', 'in', taskIds).where('relayed_at', 'is', null).returning(['task_id', 'family']).execute();
    if (rows.length) await trx.insertInto('processed_tasks').values(rows.map((r) => ({ task_id: r.task_id, family: r.family }))).onConflict((oc) => oc.column('task_id').doNothing()).execute();
  });
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** The retention family: `sweep` (hourly job, POST /admin/retention/run) of one tenant or all. */
export function retentionHandlers(deps: RetentionDeps): Record<string, TaskHandler> {
  return {
    sweep: (async (task, ctx) => {
      const tenantId = task.payload.tenantId ?? task.tenantId ?? null;
      const result = await sweepRetention(deps, { tenantId });
      ctx.logger.info('retention sweep', { ...result });
    }) as TaskHandler<{ tenantId?: string | null }>,
  };
}
