import { randomUUID } from 'node:crypto';
import type { Task } from '../ports/queue.ts';

/**
 * A webhook fan-out task for an organisation event (`team.*`, `api_key.*`, `billing.*`): the same
 * payload shape MemoryService writes, with no end user. Enqueue it in the transaction of the change.
 */
export function orgWebhookTask(tenantId: string, event: string, data: Record<string, unknown>, now: Date): Task {
  return {
    id: randomUUID(), family: 'webhook-delivery', tenantId, type: 'fanout',
    payload: { event, projectId: null, endUserId: null, data },
    createdAt: now.toISOString(),
  };
}
