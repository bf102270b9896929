import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import type { MemoryService } from '../services/memory-service.ts';
import { reindexTaskHandler } from './reindex.ts';
import type { TaskHandler } from './worker-runtime.ts';

interface EmbeddingPayload {
  userId: number;
  memoryIds: number[];
}

interface EmbedBatchPayload {
  /** memories of several end users of the task's tenant, embedded in one embedder call per user */
  items: Array<{ userId: number; memoryIds: number[] }>;
}

export interface EmbeddingTaskDeps {
  db: Kysely<Database>;
  embedder: Pick<Embedder, 'model'>;
  clock: Clock;
}

/** Memories per embedder call; a longer list is cut into chunks of this size. */
export const EMBED_CHUNK = 256;

/**
 * The embedding family: embed pending memories (one memory or a batch), sync vector metadata after an
 * update, delete vectors after a delete, and `reindex` runs queued by the admin route. Every handler
 * is idempotent — rows already ready are skipped, deletes of absent vectors are no-ops, a redelivered
 * reindex resumes its run.
 */
export function embeddingHandlers(memories: MemoryService, deps?: EmbeddingTaskDeps): Record<string, TaskHandler> {
  const embedPending = async (tenantId: string, userId: number, memoryIds: number[]) => {
    const ids = deps ? await stillPending(deps.db, tenantId, userId, memoryIds) : memoryIds;
    for (let i = 0; i < ids.length; i += EMBED_CHUNK) await memories.embedPending({ tenantId, userId }, ids.slice(i, i + EMBED_CHUNK));
  };
  const handlers: Record<string, TaskHandler> = {
    embed: (async (task) => {
      if (!task.tenantId) return;
      await embedPending(task.tenantId, task.payload.userId, task.payload.memoryIds);
    }) as TaskHandler<EmbeddingPayload>,
    'embed-batch': (async (task) => {
      if (!task.tenantId) return;
      for (const item of task.payload.items) await embedPending(task.tenantId, item.userId, item.memoryIds);
    }) as TaskHandler<EmbedBatchPayload>,
    'sync-metadata': (async (task) => {
      if (!task.tenantId) return;
      for (const id of task.payload.memoryIds) await memories.syncVectorMetadata({ tenantId: task.tenantId, userId: task.payload.userId }, id);
    }) as TaskHandler<EmbeddingPayload>,
    'delete-vectors': (async (task) => {
      await memories.deleteVectors({ userId: task.payload.userId }, task.payload.memoryIds);
    }) as TaskHandler<EmbeddingPayload>,
  };
  if (deps) handlers.reindex = reindexTaskHandler({ ...deps, memories });
  return handlers;
}

/** The ids among `memoryIds` of this end user that are not indexed yet (in id order). */
async function stillPending(db: Kysely<Database>, tenantId: string, userId: number, memoryIds: number[]): Promise<number[]> {
  if (memoryIds.length === 0) return [];
  const rows = await db
    .selectFrom('memories')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('id', 'in', memoryIds)
    .where('embedding_status', '<>', 'ready')
    .orderBy('id')
    .execute();
  return rows.map((r) => Number(r.id));
}
