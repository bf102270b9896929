import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { DependencyError } from '../errors.ts';
import type { Embedder } from '../ports/embedder.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import { topKeywords } from '../text/keywords.ts';
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
const NEIGHBOUR_QUERY_CONCURRENCY = 4;

export interface ViewBounds {
  computed_on_read: true;
  memories_considered: number;
  max_memories: number;
}

/**
 * Derived views of one end user's memories — graph, clusters, decisions and aggregate insights —
 * computed on read from the source of truth with hard bounds (the most recent MAX_VIEW_MEMORIES
 * memories). The intelligence worker may precompute them; these reads never depend on it.
 */
export class MemoryInsightsService {
  constructor(private readonly deps: MemoryInsightsDeps) {}

  /**
   * Nodes are the most recent memories; an edge joins two memories whose vectors have cosine similarity
   * ≥ threshold, found by asking the vector store for each node's nearest neighbours among the nodes,
   * plus `summarizes` edges from a summary to its sources. The vector store keeps no way to read vectors
   * back, so node vectors are recomputed with the (deterministic) embedder that indexed them.
   */
  async graph(scope: EndUserScope, options: { limit: number; threshold: number; neighbours: number }) {
    const nodes = await this.nodes(scope, options.limit);
    const ids = nodes.map((m) => m.id);
    const similar = new Map<string, { source: number; target: number; weight: number }>();
    let degraded = false;
    if (nodes.length > 1) {
      try {
        const vectors = await this.deps.embedder.embed(nodes.map((m) => m.text));
        const namespace = namespaceForUser(scope.userId);
        await eachLimited(nodes.map((m, i) => [m.id, vectors[i]] as const), NEIGHBOUR_QUERY_CONCURRENCY, async ([id, vector]) => {
          const hits = await this.deps.vectors.query(namespace, vector, { k: options.neighbours + 1, filter: { memoryIds: ids, retentionStatus: ['active'] } });
          for (const hit of hits) {
            if (hit.memoryId === id || hit.score < options.threshold) continue;
            const [a, b] = id < hit.memoryId ? [id, hit.memoryId] : [hit.memoryId, id];
            const key = `${a}:${b}`;
            const weight = round(hit.score);
            if ((similar.get(key)?.weight ?? -1) < weight) similar.set(key, { source: a, target: b, weight });
          }
        });
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
      bounds: this.bounds(nodes.length, options.limit),
    };
  }

  /**
   * Greedy clustering by cosine: take memories by importance (then recency); each one not yet placed
   * seeds a cluster and pulls in every unplaced memory at cosine ≥ threshold to the seed. Clusters
   * smaller than min_size are reported as unclustered. Labels are the cluster's top content words.
   */
  async clusters(scope: EndUserScope, options: { limit: number; threshold: number; minSize: number }) {
    const nodes = await this.nodes(scope, options.limit);
    let vectors: number[][];
    try {
      vectors = nodes.length ? (await this.deps.embedder.embed(nodes.map((m) => m.text))).map(normalise) : [];
    } catch (err) {
      if (!(err instanceof DependencyError)) throw err;
      return { clusters: [], unclustered: nodes.map((m) => m.id), threshold: options.threshold, degraded: true, bounds: this.bounds(nodes.length, options.limit) };
    }
    const order = nodes.map((_, i) => i).sort((a, b) => nodes[b].importance - nodes[a].importance || nodes[b].createdAt.getTime() - nodes[a].createdAt.getTime());
    const placed = new Set<number>();
    const groups: number[][] = [];
    for (const seed of order) {
      if (placed.has(seed)) continue;
      placed.add(seed);
      const group = [seed];
      for (const other of order) {
        if (placed.has(other)) continue;
        if (dot(vectors[seed], vectors[other]) >= options.threshold) {
          placed.add(other);
          group.push(other);
        }
      }
      groups.push(group);
    }
    const kept = groups.filter((g) => g.length >= options.minSize).sort((a, b) => b.length - a.length);
    return {
      clusters: kept.map((g, i) => ({
        id: i + 1,
        label: topKeywords(g.map((n) => nodes[n].text), 3).map((k) => k.word).join(' · ') || 'misc',
        size: g.length,
        memory_ids: g.map((n) => nodes[n].id),
      })),
      unclustered: groups.filter((g) => g.length < options.minSize).flat().map((n) => nodes[n].id),
      threshold: options.threshold,
      degraded: false,
      bounds: this.bounds(nodes.length, options.limit),
    };
  }

  /** Memories the extraction pipeline classified as decisions (memory_type = decision), newest first. */
  async decisions(scope: EndUserScope, options: { limit: number; offset: number }) {
    const { memories, total } = await this.deps.memories.list(scope, { limit: options.limit, offset: options.offset, filters: { memory_type: 'decision' } });
    return { items: memories, total, limit: options.limit, offset: options.offset };
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

  private nodes(scope: EndUserScope, limit: number): Promise<Memory[]> {
    return this.deps.memories.list(scope, { limit: Math.min(limit, MAX_VIEW_MEMORIES), filters: { include_summaries: true } }).then((r) => r.memories);
  }

  private bounds(considered: number, limit: number): ViewBounds {
    return { computed_on_read: true, memories_considered: considered, max_memories: Math.min(limit, MAX_VIEW_MEMORIES) };
  }
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

const normalise = (v: number[]) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const round = (n: number) => Math.round(n * 1e4) / 1e4;
const label = (text: string) => (text.length > 80 ? `${text.slice(0, 79)}…` : text);
