import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { DependencyError } from '../errors.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import type { Memory, ScoredMemory } from './memory-model.ts';
import type { MemoryService } from './memory-service.ts';
import type { EndUserScope } from './scope.ts';

/** Cosine from which a stored neighbour counts as related (stricter than the graph view's 0.35 default). */
export const RELATED_MIN_SIMILARITY = 0.5;
/** Nearest neighbours asked of the vector store per memory expanded. */
const NEIGHBOURS_PER_NODE = 3;
/** At most this many related memories per query, whatever `k` is. */
export const MAX_RELATED = 10;

export interface RelatedMemory {
  memory: Memory;
  /** the top-k (or related) memory this one was reached from */
  relatedTo: number;
  depth: number;
  via: 'similar' | string;
  /** derived: the score of the memory it was reached from × the edge weight (cosine, or 1 for a link) */
  score: number;
}

/**
 * `traversal_depth` on /memory/query: after the top-k by score, follow the edges the /memory/graph view
 * uses — `memory_links` (e.g. summary → sources, both directions) and stored-vector similarity ≥
 * RELATED_MIN_SIMILARITY — breadth first up to `depth` hops. Related memories never displace or re-order
 * the top-k: they come back beside it, each with the memory it was reached from, its depth, the edge kind
 * and a derived score (parent score × edge weight, so it is never above the memory that led to it).
 * Only readable, active, unexpired memories of the same end user and project are returned.
 */
export class RelatedMemories {
  constructor(private readonly deps: { db: Kysely<Database>; vectors: VectorStore; memories: Pick<MemoryService, 'getMany'> }) {}

  async expand(scope: EndUserScope, seeds: readonly ScoredMemory[], depth: number, limit: number): Promise<{ related: RelatedMemory[]; degraded: boolean }> {
    // at most max(k, 5) related memories, and never more than MAX_RELATED
    const cap = Math.min(Math.max(limit, 5), MAX_RELATED);
    const seen = new Set(seeds.map((m) => m.id));
    const found = new Map<number, RelatedMemory>();
    let frontier = seeds.map((m) => ({ id: m.id, score: m.score }));
    let degraded = false;
    for (let level = 1; level <= depth && frontier.length > 0; level++) {
      const next = new Map<number, Omit<RelatedMemory, 'memory'>>();
      const offer = (from: { id: number; score: number }, id: number, weight: number, via: string) => {
        if (seen.has(id)) return;
        const score = round(from.score * weight);
        if ((next.get(id)?.score ?? -Infinity) < score) next.set(id, { relatedTo: from.id, depth: level, via, score });
      };
      const byId = new Map(frontier.map((f) => [f.id, f]));
      const ids = [...byId.keys()];
      const links = await this.deps.db.selectFrom('memory_links').select(['from_memory_id', 'to_memory_id', 'kind'])
        .where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId)
        .where((eb) => eb.or([eb('from_memory_id', 'in', ids), eb('to_memory_id', 'in', ids)]))
        .execute();
      for (const l of links) {
        const a = Number(l.from_memory_id);
        const b = Number(l.to_memory_id);
        if (byId.has(a)) offer(byId.get(a)!, b, 1, l.kind);
        if (byId.has(b)) offer(byId.get(b)!, a, 1, l.kind);
      }
      try {
        const namespace = namespaceForUser(scope.userId);
        const vectors = await this.deps.vectors.getVectors(namespace, ids);
        for (const [id, vector] of vectors) {
          const hits = await this.deps.vectors.query(namespace, vector, {
            k: NEIGHBOURS_PER_NODE + 1,
            filter: { retentionStatus: ['active'], ...(scope.projectId ? { projectId: scope.projectId } : {}) },
          });
          for (const h of hits) if (h.memoryId !== id && h.score >= RELATED_MIN_SIMILARITY) offer(byId.get(id)!, h.memoryId, h.score, 'similar');
        }
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        degraded = true; // links still count; similarity edges are skipped
      }
      // Keep the best candidates of this level that are readable now (scope, project, status, expiry).
      const candidates = [...next.entries()].sort((x, y) => y[1].score - x[1].score || x[0] - y[0]).slice(0, cap);
      const readable = new Map((await this.deps.memories.getMany(scope, candidates.map(([id]) => id))).filter(usable).map((m) => [m.id, m]));
      frontier = [];
      for (const [id, r] of candidates) {
        seen.add(id);
        const memory = readable.get(id);
        if (!memory) continue;
        found.set(id, { memory, ...r });
        frontier.push({ id, score: r.score });
      }
    }
    const related = [...found.values()].sort((x, y) => y.score - x.score || x.depth - y.depth || x.memory.id - y.memory.id).slice(0, cap);
    return { related, degraded };
  }
}

const usable = (m: Memory) => m.retentionStatus === 'active' && (!m.expiresAt || m.expiresAt.getTime() > Date.now());
const round = (x: number) => Math.round(x * 1e4) / 1e4;
