import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import { EMBEDDABLE_COLUMNS, type EmbeddableRow, type MemoryService } from '../services/memory-service.ts';
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

/** One task's memories of one end user. */
interface EmbedRequest {
  tenantId: string;
  userId: number;
  memoryIds: number[];
}

/**
 * The embedding family: embed pending memories (one memory or a batch), sync vector metadata after an
 * update, delete vectors after a delete, and `reindex` runs queued by the admin route. Every handler
 * is idempotent — rows already ready are skipped, deletes of absent vectors are no-ops, a redelivered
 * reindex resumes its run.
 *
 * `embed` and `embed-batch` tasks that run together (the records of one SQS batch, processed in
 * parallel) are embedded together: one read of the rows still pending, one embedder call, one vector
 * upsert and one status update per chunk of EMBED_CHUNK memories, whatever their end users.
 */
export function embeddingHandlers(memories: MemoryService, deps?: EmbeddingTaskDeps): Record<string, TaskHandler> {
  const embed = deps ? createEmbedBatcher(memories, deps.db) : async (requests: EmbedRequest[]) => {
    for (const r of requests) for (let i = 0; i < r.memoryIds.length; i += EMBED_CHUNK) await memories.embedPending(r, r.memoryIds.slice(i, i + EMBED_CHUNK));
  };
  const handlers: Record<string, TaskHandler> = {
    embed: (async (task) => {
      if (!task.tenantId) return;
      await embed([{ tenantId: task.tenantId, userId: task.payload.userId, memoryIds: task.payload.memoryIds }]);
    }) as TaskHandler<EmbeddingPayload>,
    'embed-batch': (async (task) => {
      if (!task.tenantId) return;
      await embed(task.payload.items.map((item) => ({ tenantId: task.tenantId!, userId: item.userId, memoryIds: item.memoryIds })));
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

/**
 * Gathers the embed requests of the tasks that start in the same turn of the event loop and embeds
 * them together. If a joint run fails, each task's requests run again on their own, so one bad
 * memory fails only its own task (partial batch failure) and the others are done.
 */
function createEmbedBatcher(memories: MemoryService, db: Kysely<Database>) {
  let waiting: Array<{ requests: EmbedRequest[]; resolve: () => void; reject: (error: unknown) => void }> = [];

  const run = async (requests: EmbedRequest[]) => {
    const rows = await stillPending(db, requests);
    for (let i = 0; i < rows.length; i += EMBED_CHUNK) await memories.embedRows(rows.slice(i, i + EMBED_CHUNK));
  };

  const flush = async () => {
    const batch = waiting;
    waiting = [];
    try {
      await run(batch.flatMap((w) => w.requests));
      for (const w of batch) w.resolve();
    } catch (error) {
      if (batch.length === 1) return batch[0].reject(error);
      for (const w of batch) await run(w.requests).then(w.resolve, w.reject);
    }
  };

  return (requests: EmbedRequest[]): Promise<void> =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ requests, resolve, reject });
    });
}

/** The rows among the requested ones (each of its own end user) that are not indexed yet, in id order. */
async function stillPending(db: Kysely<Database>, requests: EmbedRequest[]): Promise<EmbeddableRow[]> {
  const wanted = new Set(requests.flatMap((r) => r.memoryIds.map((id) => `${r.tenantId}:${r.userId}:${id}`)));
  const out: EmbeddableRow[] = [];
  for (const tenantId of new Set(requests.map((r) => r.tenantId))) {
    const ids = [...new Set(requests.filter((r) => r.tenantId === tenantId).flatMap((r) => r.memoryIds))];
    if (ids.length === 0) continue;
    const rows = await db
      .selectFrom('memories')
      .select(EMBEDDABLE_COLUMNS)
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', ids)
      .where('embedding_status', '<>', 'ready')
      .orderBy('id')
      .execute();
    // a task names its end user: a memory id of another end user is not embedded by it
    out.push(...rows.filter((r) => wanted.has(`${tenantId}:${r.user_id}:${r.id}`)));
  }
  return out.sort((a, b) => Number(a.id) - Number(b.id));
}
