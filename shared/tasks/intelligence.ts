import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import { namespaceForUser, type VectorMetadata, type VectorStore } from '../ports/vector-store.ts';
import { DEFAULT_CLUSTER_THRESHOLD, detectDecision, greedyClusters } from '../services/memory-views.ts';
import type { MemoryService } from '../services/memory-service.ts';
import { DEFAULT_GRACE_DAYS } from './retention.ts';
import type { TaskHandler } from './worker-runtime.ts';

/** The lifecycle defaults of API.md 4.1, in days; every one is "since the last query access" unless noted. */
export const INTELLIGENCE_DEFAULTS = {
  /** hot → warm */
  warmAfterDays: 30,
  /** warm → cold */
  coldAfterDays: 180,
  /** active → archived (archived memories are readable by id, not searchable) */
  archiveAfterDays: 90,
  /** archived → soft_deleted, counted from archive_at (retention_expires_at = archive_at + 60 days) */
  archivedRetentionDays: 60,
  /** importance halves every this many days once a memory has gone unaccessed for `warmAfterDays` */
  importanceHalfLifeDays: 90,
  importanceFloor: 0.05,
  /** cosine similarity that puts two memories in one cluster (the /memory/clusters default, so its default answer can be served precomputed) */
  clusterThreshold: DEFAULT_CLUSTER_THRESHOLD,
  /** cosine similarity from which a cluster member counts as a near duplicate of its seed */
  nearDuplicateThreshold: 0.95,
  /** most recent active memories per end user that are clustered (the read routes consider 500 at most too) */
  maxClusterMemories: 500,
} as const;

export type IntelligenceSettings = { -readonly [K in keyof typeof INTELLIGENCE_DEFAULTS]: number };

export interface IntelligenceDeps {
  db: Kysely<Database>;
  vectors: VectorStore;
  embedder: Embedder;
  cache: Cache;
  clock: Clock;
  memories: Pick<MemoryService, 'openTexts'>;
  settings?: Partial<IntelligenceSettings>;
}

export interface IntelligenceResult {
  decayed: number;
  tier_moves: number;
  archived: number;
  soft_deleted: number;
  users_clustered: number;
  clustered_memories: number;
  decisions: number;
}

const DAY_MS = 86_400_000;

/**
 * One re-evaluation of a tenant's memories (the daily `intelligence` job, one task per tenant):
 *
 * 1. importance decay of memories unaccessed for `warmAfterDays`, for the time since the last decay;
 * 2. tier moves hot → warm → cold by last query access (and back to hot after an access);
 * 3. retention transitions: active → archived after `archiveAfterDays` unaccessed, archived →
 *    soft_deleted once `retention_expires_at` passes (restorable for the project's grace, default 7 days);
 * 4. per end user: near-duplicate clustering and decision detection into `memory_clusters` and
 *    `memory_decisions`, which /memory/clusters, /memory/decisions and /memory/intelligence can read.
 *
 * Every tier and status move writes a memory_events row and updates the vector's metadata, so the
 * index filters (tier, retention status) stay right.
 */
export async function reevaluateTenant(deps: IntelligenceDeps, tenantId: string): Promise<IntelligenceResult> {
  const s: IntelligenceSettings = { ...INTELLIGENCE_DEFAULTS, ...deps.settings };
  const now = deps.clock.now();
  const result: IntelligenceResult = { decayed: 0, tier_moves: 0, archived: 0, soft_deleted: 0, users_clustered: 0, clustered_memories: 0, decisions: 0 };
  result.decayed = await decayImportance(deps, tenantId, now, s);
  const touched = new Map<number, Set<number>>();
  const note = (rows: Array<{ id: number | string; user_id: number }>) => {
    for (const r of rows) (touched.get(r.user_id) ?? touched.set(r.user_id, new Set()).get(r.user_id)!).add(Number(r.id));
  };

  await deps.db.transaction().execute(async (trx) => {
    // Tiers by last access; an accessed cold memory comes back to hot.
    const warm = new Date(now.getTime() - s.warmAfterDays * DAY_MS);
    const cold = new Date(now.getTime() - s.coldAfterDays * DAY_MS);
    const target = sql<string>`case when last_accessed_at < ${cold} then 'cold' when last_accessed_at < ${warm} then 'warm' else 'hot' end`;
    const moved = await trx
      .with('changes', (db) => db.selectFrom('memories').select(['id', 'tier as from_tier']).select(target.as('to_tier')).where('tenant_id', '=', tenantId).where('retention_status', '<>', 'purged').where(sql<boolean>`tier is distinct from ${target}`).forUpdate())
      .updateTable('memories')
      .from('changes')
      .set((eb) => ({ tier: eb.ref('changes.to_tier'), updated_at: now }))
      .whereRef('memories.id', '=', 'changes.id')
      .where('memories.tenant_id', '=', tenantId)
      .returning(['memories.id', 'memories.user_id', 'changes.from_tier', 'changes.to_tier'])
      .execute();
    await events(trx, tenantId, now, moved.map((m) => ({ id: m.id, type: 'tier_changed', data: { from: m.from_tier, to: m.to_tier } })));
    result.tier_moves = moved.length;
    note(moved);

    const unaccessed = new Date(now.getTime() - s.archiveAfterDays * DAY_MS);
    const archived = await trx
      .updateTable('memories')
      .set({ retention_status: 'archived', archive_at: now, retention_expires_at: new Date(now.getTime() + s.archivedRetentionDays * DAY_MS), updated_at: now })
      .where('tenant_id', '=', tenantId)
      .where('retention_status', '=', 'active')
      .where('last_accessed_at', '<', unaccessed)
      .returning(['id', 'user_id'])
      .execute();
    await events(trx, tenantId, now, archived.map((m) => ({ id: m.id, type: 'archived', data: { from: 'active', to: 'archived', reason: 'unaccessed', days: s.archiveAfterDays } })));
    result.archived = archived.length;
    note(archived);

    // Grace per project policy (retention_policies.grace_days), else the contract default.
    const grace = sql<Date>`${now}::timestamptz + make_interval(days => coalesce((select rp.grace_days from retention_policies rp where rp.tenant_id = memories.tenant_id and rp.project_id = coalesce(memories.project_id, (select p.id from projects p where p.tenant_id = memories.tenant_id and p.is_default limit 1))), ${DEFAULT_GRACE_DAYS}))`;
    const softDeleted = await trx
      .updateTable('memories')
      .set({ retention_status: 'soft_deleted', deleted_at: now, hard_delete_at: grace, dedupe_key: null, updated_at: now })
      .where('tenant_id', '=', tenantId)
      .where('retention_status', '=', 'archived')
      .where('retention_expires_at', 'is not', null)
      .where('retention_expires_at', '<=', now)
      .returning(['id', 'user_id', 'hard_delete_at'])
      .execute();
    await events(trx, tenantId, now, softDeleted.map((m) => ({ id: m.id, type: 'soft_deleted', data: { from: 'archived', to: 'soft_deleted', reason: 'archive_retention_expired', hard_delete_at: new Date(m.hard_delete_at!).toISOString() } })));
    result.soft_deleted = softDeleted.length;
    note(softDeleted);
  });

  await syncMetadata(deps, tenantId, touched);
  // End users with active memories, and those whose precomputed rows may have gone stale.
  const users = await deps.db
    .selectFrom('memories').select('user_id').where('tenant_id', '=', tenantId).where('retention_status', '=', 'active')
    .union(deps.db.selectFrom('memory_clusters').select('user_id').where('tenant_id', '=', tenantId))
    .union(deps.db.selectFrom('memory_decisions').select('user_id').where('tenant_id', '=', tenantId))
    .union(deps.db.selectFrom('memory_view_runs').select('user_id').where('tenant_id', '=', tenantId))
    .execute();
  for (const { user_id: userId } of users) {
    const r = await clusterAndDetect(deps, tenantId, userId, now, s);
    result.users_clustered += 1;
    result.clustered_memories += r.clustered;
    result.decisions += r.decisions;
  }
  return result;
}

/** Importance × 0.5^(days / half-life) for the unaccessed time not yet decayed; idempotent at a given instant. */
async function decayImportance(deps: IntelligenceDeps, tenantId: string, now: Date, s: IntelligenceSettings): Promise<number> {
  const start = sql<Date>`greatest(coalesce(importance_decayed_at, '-infinity'::timestamptz), last_accessed_at + make_interval(days => ${s.warmAfterDays}))`;
  const res = await deps.db
    .updateTable('memories')
    .set({
      importance: sql`greatest(${s.importanceFloor}::real, importance * power(0.5, extract(epoch from (${now}::timestamptz - ${start})) / ${s.importanceHalfLifeDays * 86_400}))`,
      importance_decayed_at: now,
    })
    .where('tenant_id', '=', tenantId)
    .where('retention_status', 'in', ['active', 'archived'])
    .where(sql<boolean>`${start} < ${now}::timestamptz`)
    .where('importance', '>', s.importanceFloor)
    .executeTakeFirst();
  return Number(res.numUpdatedRows ?? 0);
}

async function events(trx: Kysely<Database>, tenantId: string, now: Date, rows: Array<{ id: number | string; type: string; data: Record<string, unknown> }>) {
  if (!rows.length) return;
  await trx.insertInto('memory_events').values(rows.map((r) => ({ tenant_id: tenantId, memory_id: Number(r.id), event_type: r.type, data: JSON.stringify({ ...r.data, by: 'intelligence' }), created_at: now }))).execute();
}

/** After commit: vector metadata (tier, retention status) of every moved memory, then the owners' query caches. */
async function syncMetadata(deps: IntelligenceDeps, tenantId: string, touched: Map<number, Set<number>>) {
  for (const [userId, ids] of touched) {
    const rows = await deps.db.selectFrom('memories').select(['id', 'tier', 'retention_status']).where('tenant_id', '=', tenantId).where('user_id', '=', userId).where('id', 'in', [...ids]).execute();
    for (const r of rows) {
      await deps.vectors.updateMetadata(namespaceForUser(userId), Number(r.id), { tier: r.tier as VectorMetadata['tier'], retentionStatus: r.retention_status as VectorMetadata['retentionStatus'] });
    }
    await deps.cache.incr(`qgen:${tenantId}:${userId}`, 86_400).catch(() => {});
  }
}

/**
 * Clusters and decisions of one end user's most recent active memories (not summaries) — the same set, clustering
 * (`greedyClusters`, seeds by importance then recency) and detector (`detectDecision`) the read routes
 * use, so a fresh run answers /memory/clusters and /memory/decisions as they would. Vectors are read back
 * from the vector store (those not stored yet are embedded). The user's rows in both tables and the run
 * marker (`memory_view_runs`: which memories, which threshold, when) are replaced in one transaction.
 */
async function clusterAndDetect(deps: IntelligenceDeps, tenantId: string, userId: number, now: Date, s: IntelligenceSettings) {
  const rows = await deps.db
    .selectFrom('memories')
    .select(['id', 'text_ciphertext', 'importance', 'memory_type', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('retention_status', '=', 'active')
    .where('is_summary', '=', false)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(s.maxClusterMemories)
    .execute();
  const texts = await deps.memories.openTexts({ tenantId, userId }, rows);
  const ids = rows.map((r) => Number(r.id));
  let vectors = new Map<number, number[]>();
  if (rows.length > 1) {
    vectors = await deps.vectors.getVectors(namespaceForUser(userId), ids);
    const missing = rows.map((_, i) => i).filter((i) => !vectors.has(ids[i]!));
    if (missing.length) {
      const fresh = await deps.embedder.embed(missing.map((i) => texts[i]!));
      missing.forEach((i, j) => vectors.set(ids[i]!, fresh[j]!));
    }
  }
  const groups = greedyClusters(rows.map((r, i) => ({ id: ids[i]!, importance: r.importance, createdAt: new Date(r.created_at), vector: vectors.has(ids[i]!) ? unit(vectors.get(ids[i]!)!) : undefined })), s.clusterThreshold);
  const members = groups.filter((g) => g.length > 1).flatMap((g) => g.map((m) => ({
    memory_id: ids[m.index]!, cluster_seed_id: ids[g[0]!.index]!, similarity: m.index === g[0]!.index ? 1 : round(m.similarity), near_duplicate: m.index !== g[0]!.index && m.similarity >= s.nearDuplicateThreshold,
  })));
  const decisions = rows.flatMap((r, i) => {
    const d = detectDecision(r.memory_type, texts[i]!);
    return d ? [{ memory_id: ids[i]!, ...d }] : [];
  });
  await deps.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('memory_clusters').where('tenant_id', '=', tenantId).where('user_id', '=', userId).execute();
    await trx.deleteFrom('memory_decisions').where('tenant_id', '=', tenantId).where('user_id', '=', userId).execute();
    if (members.length) await trx.insertInto('memory_clusters').values(members.map((m) => ({ ...m, tenant_id: tenantId, user_id: userId, computed_at: now }))).execute();
    if (decisions.length) await trx.insertInto('memory_decisions').values(decisions.map((d) => ({ ...d, tenant_id: tenantId, user_id: userId, detected_at: now }))).execute();
    await trx.insertInto('memory_view_runs')
      .values({ tenant_id: tenantId, user_id: userId, computed_at: now, cluster_threshold: s.clusterThreshold, memory_ids: JSON.stringify(ids) })
      .onConflict((oc) => oc.columns(['tenant_id', 'user_id']).doUpdateSet({ computed_at: now, cluster_threshold: s.clusterThreshold, memory_ids: JSON.stringify(ids) }))
      .execute();
  });
  return { clustered: members.length, decisions: decisions.length };
}

const unit = (v: number[]) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Precomputed views for the read routes: the clusters of one end user (seed first) with their
 * computation time, and the detected decisions, newest first. Ids only; callers hydrate memories.
 */
export async function precomputedClusters(db: Kysely<Database>, scope: { tenantId: string; userId: number }) {
  const rows = await db.selectFrom('memory_clusters').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).orderBy('cluster_seed_id').orderBy('similarity', 'desc').execute();
  const clusters = new Map<number, { seed_id: number; members: Array<{ memory_id: number; similarity: number; near_duplicate: boolean }>; computed_at: string }>();
  for (const r of rows) {
    const seed = Number(r.cluster_seed_id);
    const c = clusters.get(seed) ?? clusters.set(seed, { seed_id: seed, members: [], computed_at: new Date(r.computed_at).toISOString() }).get(seed)!;
    c.members.push({ memory_id: Number(r.memory_id), similarity: r.similarity, near_duplicate: r.near_duplicate });
  }
  return [...clusters.values()];
}

export async function precomputedDecisions(db: Kysely<Database>, scope: { tenantId: string; userId: number }) {
  const rows = await db.selectFrom('memory_decisions').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).orderBy('detected_at', 'desc').orderBy('memory_id', 'desc').execute();
  return rows.map((r) => ({ memory_id: Number(r.memory_id), confidence: r.confidence, signal: r.signal, detected_at: new Date(r.detected_at).toISOString() }));
}

/**
 * The intelligence family: `reevaluate` (payload { tenantId }) re-evaluates one tenant; the daily
 * job queues one per tenant so a large tenant does not hold up the others.
 */
export function intelligenceHandlers(deps: IntelligenceDeps): Record<string, TaskHandler> {
  return {
    reevaluate: (async (task, ctx) => {
      const tenantId = task.payload.tenantId ?? task.tenantId;
      if (!tenantId) return;
      const result = await reevaluateTenant(deps, tenantId);
      ctx.logger.info('intelligence re-evaluation', { ...result });
    }) as TaskHandler<{ tenantId?: string }>,
  };
}
