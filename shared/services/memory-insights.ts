import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { DependencyError } from '../errors.ts';
import type { Embedder } from '../ports/embedder.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import { topKeywords } from '../text/keywords.ts';
import { precomputedClusters, precomputedDecisions } from '../tasks/intelligence.ts';
import { detectDecision, greedyClusters, seedOrder } from './memory-views.ts';
import type { Memory } from './memory-model.ts';
import type { MemoryService } from './memory-service.ts';
import type { EndUserScope } from './scope.ts';

export interface MemoryInsightsDeps {
  db: Kysely<Database>;
  memories: MemoryService;
  embedder: Embedder;
  vectors: VectorStore;
}

/** At most this many memories (the most recent) feed one derived view computed on read. */
export const MAX_VIEW_MEMORIES = 500;
export interface ViewBounds {
  computed_on_read: boolean;
  memories_considered: number;
  max_memories: number;
}

/** Where a view's answer came from: the worker's rows (fresh for exactly this memory set) or a computation now. */
export type ViewSource = { source: 'precomputed'; computed_at: string } | { source: 'computed_on_read'; computed_at: null };

/**
 * Derived views of one end user's memories — graph, clusters, decisions and aggregate insights —
 * computed on read from the source of truth with hard bounds (the most recent MAX_VIEW_MEMORIES
 * memories). The intelligence worker may precompute them; these reads never depend on it.
 */
export class MemoryInsightsService {
  constructor(private readonly deps: MemoryInsightsDeps) {}

  /**
   * Nodes are the most recent memories; an edge joins two memories when one is among the other's
   * `neighbours` most similar nodes with cosine ≥ threshold (computed in memory from the vectors the
   * store holds, read back with one `getVectors` call), plus `summarizes` edges from a summary to its
   * sources. Nodes whose vector is not stored yet (embedding pending) are embedded now.
   */
  async graph(scope: EndUserScope, options: { limit: number; threshold: number; neighbours: number }) {
    const nodes = await this.nodes(scope, options.limit);
    const ids = nodes.map((m) => m.id);
    const similar = new Map<string, { source: number; target: number; weight: number }>();
    let degraded = false;
    let vectorCounts = { stored: 0, embedded: 0 };
    if (nodes.length > 1) {
      try {
        const { vectors, stored, embedded } = await this.vectorsFor(scope, nodes);
        vectorCounts = { stored, embedded };
        for (const a of nodes) {
          const va = vectors.get(a.id)!;
          const nearest = nodes
            .filter((b) => b.id !== a.id)
            .map((b) => ({ id: b.id, score: dot(va, vectors.get(b.id)!) }))
            .filter((h) => h.score >= options.threshold)
            .sort((x, y) => y.score - x.score || x.id - y.id)
            .slice(0, options.neighbours);
          for (const hit of nearest) {
            const [lo, hi] = a.id < hit.id ? [a.id, hit.id] : [hit.id, a.id];
            const key = `${lo}:${hi}`;
            const weight = round(hit.score);
            if ((similar.get(key)?.weight ?? -1) < weight) similar.set(key, { source: lo, target: hi, weight });
          }
        }
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        degraded = true;
      }
    }
    const links = ids.length
      ? await this.deps.db.selectFrom('memory_links').select(['from_memory_id', 'to_memory_id', 'kind'])
        .where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId)
        .where('from_memory_id', 'in', ids).where('to_memory_id', 'in', ids).execute()
      : [];
    return {
      nodes: nodes.map((m) => ({ id: m.id, label: label(m.text), memory_type: m.memoryType, tags: m.tags, importance: m.importance, is_summary: m.isSummary, created_at: m.createdAt.toISOString() })),
      edges: [
        ...[...similar.values()].map((e) => ({ ...e, kind: 'similar' as const })),
        ...links.map((l) => ({ source: Number(l.from_memory_id), target: Number(l.to_memory_id), weight: 1, kind: l.kind })),
      ],
      threshold: options.threshold,
      degraded,
      bounds: { ...this.bounds(nodes.length, options.limit, true), vectors_read: vectorCounts.stored, vectors_embedded: vectorCounts.embedded },
    };
  }

  /**
   * Greedy clusters (`greedyClusters`) of the most recent memories; clusters smaller than min_size are
   * reported as unclustered; labels are the cluster's top content words. Served from the intelligence
   * worker's rows when they are fresh for exactly this memory set and threshold (`freshRun`), else
   * computed now from the stored vectors (memories without one are embedded now).
   */
  async clusters(scope: EndUserScope, options: { limit: number; threshold: number; minSize: number }) {
    const nodes = await this.nodes(scope, options.limit, false);
    const run = await this.freshRun(scope, nodes, options.threshold);
    let groups: number[][];
    let from: ViewSource;
    if (run) {
      const at = new Map(nodes.map((m, i) => [m.id, i]));
      const rows = await precomputedClusters(this.deps.db, scope);
      const member = new Set<number>();
      groups = rows.map((c) => {
        const seed = at.get(c.seed_id)!;
        const rest = c.members.filter((m) => m.memory_id !== c.seed_id).map((m) => at.get(m.memory_id)!);
        for (const i of [seed, ...rest]) member.add(i);
        return [seed, ...rest];
      });
      // stored clusters hold two or more memories; every other memory of the set stands alone
      for (const i of seedOrder(nodes)) if (!member.has(i)) groups.push([i]);
      from = { source: 'precomputed', computed_at: run.computed_at };
    } else {
      let vectors: Map<number, number[]>;
      try {
        vectors = nodes.length > 1 ? (await this.vectorsFor(scope, nodes)).vectors : new Map();
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        return { clusters: [], unclustered: nodes.map((m) => m.id), threshold: options.threshold, degraded: true, source: 'computed_on_read' as const, computed_at: null, bounds: this.bounds(nodes.length, options.limit, true) };
      }
      groups = greedyClusters(nodes.map((m) => ({ id: m.id, importance: m.importance, createdAt: m.createdAt, vector: vectors.get(m.id) })), options.threshold).map((g) => g.map((x) => x.index));
      from = { source: 'computed_on_read', computed_at: null };
    }
    const rank = new Map(seedOrder(nodes).map((nodeIndex, r) => [nodeIndex, r]));
    const kept = groups.filter((g) => g.length >= options.minSize).sort((a, b) => b.length - a.length || rank.get(a[0]!)! - rank.get(b[0]!)!);
    return {
      clusters: kept.map((g, i) => ({
        id: i + 1,
        label: topKeywords(g.map((n) => nodes[n]!.text), 3).map((k) => k.word).join(' · ') || 'misc',
        size: g.length,
        memory_ids: g.map((n) => nodes[n]!.id),
      })),
      unclustered: groups.filter((g) => g.length < options.minSize).flat().map((n) => nodes[n]!.id),
      threshold: options.threshold,
      degraded: false,
      ...from,
      bounds: this.bounds(nodes.length, options.limit, from.source === 'computed_on_read'),
    };
  }

  /**
   * Decisions among the most recent MAX_VIEW_MEMORIES memories: classified as decisions by extraction
   * (memory_type) or worded as one (DECISION_CUES), newest first. Served from the worker's rows when they
   * are fresh for exactly this memory set, else detected now with the same detector.
   */
  async decisions(scope: EndUserScope, options: { limit: number; offset: number }) {
    const nodes = await this.nodes(scope, MAX_VIEW_MEMORIES, false);
    const run = await this.freshRun(scope, nodes, null);
    let decided: Set<number>;
    let from: ViewSource;
    if (run) {
      decided = new Set((await precomputedDecisions(this.deps.db, scope)).map((d) => d.memory_id));
      from = { source: 'precomputed', computed_at: run.computed_at };
    } else {
      decided = new Set(nodes.filter((m) => detectDecision(m.memoryType, m.text)).map((m) => m.id));
      from = { source: 'computed_on_read', computed_at: null };
    }
    const all = nodes.filter((m) => decided.has(m.id));
    return { items: all.slice(options.offset, options.offset + options.limit), total: all.length, limit: options.limit, offset: options.offset, ...from, bounds: this.bounds(nodes.length, MAX_VIEW_MEMORIES, from.source === 'computed_on_read') };
  }

  /**
   * Aggregates of the end user's memories: counts by type, tier, source and retention state and top tags
   * (SQL aggregates over every row in scope, no text read), weekly activity over the last 12 weeks, and
   * top keywords from the most recent MAX_VIEW_MEMORIES decrypted memories.
   */
  async intelligence(scope: EndUserScope, now: Date) {
    const owned = () => {
      let q = this.deps.db.selectFrom('memories').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId);
      if (scope.projectId) q = q.where('project_id', '=', scope.projectId);
      return q;
    };
    const countBy = async (column: 'memory_type' | 'tier' | 'source' | 'retention_status') => {
      const rows = await owned().select([sql<string | null>`${sql.ref(column)}`.as('key'), (eb) => eb.fn.countAll<number>().as('n')]).groupBy(column).orderBy('n', 'desc').execute();
      return Object.fromEntries(rows.map((r) => [r.key ?? 'unknown', Number(r.n)]));
    };
    const [byType, byTier, bySource, byStatus] = [await countBy('memory_type'), await countBy('tier'), await countBy('source'), await countBy('retention_status')];
    const totals = await owned()
      .select([(eb) => eb.fn.countAll<number>().as('n'), sql<number | null>`avg(importance)`.as('avg_importance'), sql<Date | null>`min(created_at)`.as('first'), sql<Date | null>`max(created_at)`.as('last')])
      .executeTakeFirst();
    const topTags = await sql<{ tag: string; n: number }>`
      select t.tag, count(*)::int as n
      from memories m cross join lateral unnest(m.tags) as t(tag)
      where m.tenant_id = ${scope.tenantId} and m.user_id = ${scope.userId} and m.retention_status = 'active'
        ${scope.projectId ? sql`and m.project_id = ${scope.projectId}` : sql``}
      group by t.tag order by n desc, t.tag limit 10`.execute(this.deps.db);
    const since = new Date(now.getTime() - 12 * 7 * 86_400_000);
    const weekly = await owned()
      .select([sql<string>`to_char(date_trunc('week', created_at at time zone 'UTC'), 'YYYY-MM-DD')`.as('week'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('created_at', '>=', since)
      .groupBy(sql`date_trunc('week', created_at at time zone 'UTC')`)
      .orderBy(sql`date_trunc('week', created_at at time zone 'UTC')`)
      .execute();
    const recent = await this.nodes(scope, MAX_VIEW_MEMORIES);
    return {
      total: Number(totals?.n ?? 0),
      average_importance: totals?.avg_importance === null || totals?.avg_importance === undefined ? null : round(Number(totals.avg_importance)),
      first_memory_at: totals?.first ? new Date(totals.first).toISOString() : null,
      last_memory_at: totals?.last ? new Date(totals.last).toISOString() : null,
      by_type: byType,
      by_tier: byTier,
      by_source: bySource,
      by_retention_status: byStatus,
      top_tags: topTags.rows.map((r) => ({ tag: r.tag, count: Number(r.n) })),
      top_keywords: topKeywords(recent.map((m) => m.text), 10),
      activity_by_week: weekly.map((w) => ({ week_start: w.week, count: Number(w.n) })),
      decisions: byType.decision ?? 0,
      bounds: { ...this.bounds(recent.length, MAX_VIEW_MEMORIES), aggregates_over: 'all memories in scope (SQL, no text read)', keywords_over: 'the most recent memories considered', activity_weeks: 12 },
    };
  }

  /** The most recent active memories; summaries are graph nodes (their `summarizes` edges) but not clustered or scanned for decisions. */
  private nodes(scope: EndUserScope, limit: number, includeSummaries = true): Promise<Memory[]> {
    return this.deps.memories.list(scope, { limit: Math.min(limit, MAX_VIEW_MEMORIES), filters: { include_summaries: includeSummaries } }).then((r) => r.memories);
  }

  private bounds(considered: number, limit: number, onRead = true): ViewBounds {
    return { computed_on_read: onRead, memories_considered: considered, max_memories: Math.min(limit, MAX_VIEW_MEMORIES) };
  }

  /**
   * Unit vectors of the nodes: read back from the vector store in one call; the few not stored yet
   * (embedding pending or failed) are embedded now. DependencyError when the store or embedder fails.
   */
  private async vectorsFor(scope: EndUserScope, nodes: Memory[]): Promise<{ vectors: Map<number, number[]>; stored: number; embedded: number }> {
    const vectors = await this.deps.vectors.getVectors(namespaceForUser(scope.userId), nodes.map((m) => m.id));
    const stored = vectors.size;
    const missing = nodes.filter((m) => !vectors.has(m.id));
    if (missing.length) {
      const fresh = await this.deps.embedder.embed(missing.map((m) => m.text));
      missing.forEach((m, i) => vectors.set(m.id, fresh[i]!));
    }
    for (const [id, v] of vectors) vectors.set(id, normalise(v));
    return { vectors, stored, embedded: missing.length };
  }

  /**
   * The worker's last run for this end user, when it covers exactly these memories (same ids — so no
   * memory was added, deleted, archived or moved out of the project's view since), none of them changed
   * after it, and (for clusters) it used this threshold. Otherwise null: the view is computed on read.
   */
  private async freshRun(scope: EndUserScope, nodes: Memory[], threshold: number | null): Promise<{ computed_at: string } | null> {
    if (nodes.length === 0) return null;
    const run = await this.deps.db.selectFrom('memory_view_runs').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).executeTakeFirst();
    if (!run) return null;
    if (threshold !== null && Math.abs(run.cluster_threshold - threshold) > 1e-6) return null;
    const covered = new Set((run.memory_ids as unknown as Array<number | string>).map(Number));
    if (covered.size !== nodes.length || nodes.some((m) => !covered.has(m.id))) return null;
    const at = new Date(run.computed_at);
    if (nodes.some((m) => m.updatedAt > at || m.createdAt > at)) return null;
    return { computed_at: at.toISOString() };
  }
}

const normalise = (v: number[]) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const round = (n: number) => Math.round(n * 1e4) / 1e4;
const label = (text: string) => (text.length > 80 ? `${text.slice(0, 79)}…` : text);
