import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { MemoryService } from './memory-service.ts';

export interface ReindexFilter {
  tenantId?: string;
  /** users.id of one end user (needs tenantId) */
  userId?: number;
}

export interface ReindexOptions {
  batchSize?: number;
  /** continue an interrupted run: only rows still pending are embedded */
  resume?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Re-embeds memories from their encrypted text into the vector index (the index is derived and
 * rebuildable). A run first marks the selected rows pending, then embeds them in id order; rows flip
 * to ready as they are indexed, so an interrupted run resumes where it stopped with `resume`.
 * Used by the admin CLI; the embedding worker's `reindex` task can call it with the same filter.
 */
export async function reindexMemories(deps: { db: Kysely<Database>; memories: Pick<MemoryService, 'embedPending'> }, filter: ReindexFilter, options: ReindexOptions = {}) {
  const batchSize = options.batchSize ?? 64;
  const selected = () => {
    let q = deps.db.selectFrom('memories').where('retention_status', '<>', 'purged');
    if (filter.tenantId) q = q.where('tenant_id', '=', filter.tenantId);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    return q;
  };
  if (!options.resume) {
    let u = deps.db.updateTable('memories').set({ embedding_status: 'pending' }).where('retention_status', '<>', 'purged');
    if (filter.tenantId) u = u.where('tenant_id', '=', filter.tenantId);
    if (filter.userId !== undefined) u = u.where('user_id', '=', filter.userId);
    await u.execute();
  }
  const counted = await selected().where('embedding_status', '<>', 'ready').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const total = Number(counted?.n ?? 0);
  let done = 0;
  let lastId = 0;
  options.onProgress?.(0, total);
  for (;;) {
    const rows = await selected().where('embedding_status', '<>', 'ready').where('id', '>', lastId).select(['id', 'tenant_id', 'user_id']).orderBy('id').limit(batchSize).execute();
    if (rows.length === 0) break;
    const groups = new Map<string, { tenantId: string; userId: number; ids: number[] }>();
    for (const r of rows) {
      const key = `${r.tenant_id}:${r.user_id}`;
      const g = groups.get(key) ?? groups.set(key, { tenantId: r.tenant_id, userId: r.user_id, ids: [] }).get(key)!;
      g.ids.push(Number(r.id));
    }
    for (const g of groups.values()) await deps.memories.embedPending({ tenantId: g.tenantId, userId: g.userId }, g.ids);
    done += rows.length;
    lastId = Number(rows[rows.length - 1].id);
    options.onProgress?.(Math.min(done, total), total);
  }
  return { reindexed: done, total };
}
