import type { MemoryService } from '../services/memory-service.ts';
import type { TaskHandler } from './worker-runtime.ts';

interface EmbeddingPayload {
  userId: number;
  memoryIds: number[];
}

/**
 * The embedding family: embed pending memories, sync vector metadata after an update, delete vectors
 * after a delete. Every handler is idempotent — ready rows are skipped, deletes of absent vectors are no-ops.
 */
export function embeddingHandlers(memories: MemoryService): Record<string, TaskHandler<EmbeddingPayload>> {
  return {
    embed: async (task) => {
      if (!task.tenantId) return;
      await memories.embedPending({ tenantId: task.tenantId, userId: task.payload.userId }, task.payload.memoryIds);
    },
    'sync-metadata': async (task) => {
      if (!task.tenantId) return;
      for (const id of task.payload.memoryIds) await memories.syncVectorMetadata({ tenantId: task.tenantId, userId: task.payload.userId }, id);
    },
    'delete-vectors': async (task) => {
      await memories.deleteVectors({ userId: task.payload.userId }, task.payload.memoryIds);
    },
  };
}
