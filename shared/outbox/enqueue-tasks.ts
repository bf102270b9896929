import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Task } from '../ports/queue.ts';

/**
 * Writes tasks to the outbox inside the caller's transaction, so a task exists exactly when the change
 * it belongs to commits. After commit, call the relay's `relayNow(ids)`; the sweep covers a relay that
 * never ran. Returns the task ids, in order.
 */
export async function enqueueTasks(trx: Kysely<Database>, tasks: Task[]): Promise<string[]> {
  if (tasks.length === 0) return [];
  await trx
    .insertInto('outbox')
    .values(tasks.map((task) => ({
      task_id: task.id,
      family: task.family,
      type: task.type,
      tenant_id: task.tenantId,
      payload: JSON.stringify(task.payload),
      created_at: task.createdAt,
    })))
    .execute();
  return tasks.map((task) => task.id);
}
