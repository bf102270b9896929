/**
 * The pure parts of the derived views that the read routes (memory-insights.ts) and the intelligence
 * worker (tasks/intelligence.ts) share, so a precomputed answer is the one the route would compute.
 */

/** Cosine from which two memories share a cluster: the /memory/clusters default and what the intelligence worker precomputes. */
export const DEFAULT_CLUSTER_THRESHOLD = 0.35;

/** Decision wording beyond what extraction already classifies (memory_type = decision). */
export const DECISION_CUES = /\b(decided|decision|we will|we'll|going with|chose|agreed (?:to|on)|settled on|opted for|signed off|approved|final call|resolved to)\b/i;

/** The decision detector both the worker and the read route use: extraction's class first, then wording. */
export function detectDecision(memoryType: string | null, text: string): { confidence: number; signal: 'memory_type' | 'cue' } | null {
  if (memoryType === 'decision') return { confidence: 0.9, signal: 'memory_type' };
  if (DECISION_CUES.test(text)) return { confidence: 0.6, signal: 'cue' };
  return null;
}

export interface ClusterItem { id: number; importance: number; createdAt: Date; vector: number[] | undefined }

/** Seed order of the greedy clustering: importance, then newest, then highest id. */
export function seedOrder<T extends Pick<ClusterItem, 'id' | 'importance' | 'createdAt'>>(items: readonly T[]): number[] {
  return items.map((_, i) => i).sort((a, b) => items[b]!.importance - items[a]!.importance || items[b]!.createdAt.getTime() - items[a]!.createdAt.getTime() || items[b]!.id - items[a]!.id);
}

/**
 * Greedy clustering by cosine (vectors unit length): items in seed order; each unplaced one seeds a
 * group that takes every unplaced item at cosine ≥ threshold to the seed. Items without a vector stay
 * alone. Returns every group (singletons included), seed first, with each member's cosine to the seed.
 */
export function greedyClusters(items: readonly ClusterItem[], threshold: number): Array<Array<{ index: number; similarity: number }>> {
  const order = seedOrder(items);
  const placed = new Set<number>();
  const groups: Array<Array<{ index: number; similarity: number }>> = [];
  for (const seed of order) {
    if (placed.has(seed)) continue;
    placed.add(seed);
    const group = [{ index: seed, similarity: 1 }];
    const sv = items[seed]!.vector;
    if (sv) {
      for (const other of order) {
        const ov = items[other]!.vector;
        if (placed.has(other) || !ov) continue;
        const sim = dot(sv, ov);
        if (sim >= threshold) {
          placed.add(other);
          group.push({ index: other, similarity: sim });
        }
      }
    }
    groups.push(group);
  }
  return groups;
}

const dot = (a: number[], b: number[]) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
