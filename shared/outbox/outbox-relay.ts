import type { Logger } from '@aws-lambda-powertools/logger';
import { sql, type Selectable } from 'kysely';
import type { OutboxTable } from '../db/schema.ts';
import type { Db } from '../ports/db.ts';
import type { Queue, Task, TaskFamily } from '../ports/queue.ts';

export interface OutboxRelayOptions {
  db: Db;
  queue: Queue;
  /** rows claimed and sent per round trip */
  batchSize?: number;
  logger?: Pick<Logger, 'warn'>;
}

export interface RelayResult {
  /** tasks sent to the queue and marked relayed */
  relayed: number;
  /** tasks whose send failed; they stay unrelayed for the sweep */
  failed: number;
}

export interface OutboxRelay {
  /**
   * Sends the given unrelayed tasks (all unrelayed tasks when omitted) and marks them relayed. Call it
   * after the transaction that enqueued them commits. Never throws for a queue failure: the sweep
   * retries what it could not send.
   */
  relayNow(taskIds?: string[]): Promise<RelayResult>;
  /** Sends every task left unrelayed for longer than `olderThanMs`: the scheduled safety net. */
  sweep(options: { olderThanMs: number }): Promise<RelayResult>;
  /**
   * For an in-memory queue only, once at start before consumers run: the queue that held the tasks
   * relayed but never processed is gone with the previous process, so they are marked unrelayed for the
   * next relay or sweep. Returns how many. (On SQS the messages survive; do not call it there.)
   */
  requeueUnprocessed(): Promise<number>;
  /**
   * Deletes relayed outbox rows and idempotency-ledger rows older than `olderThanMs`. Keep it above the
   * queue's message retention (SQS: up to 14 days) so a late redelivery still finds its ledger row; a
   * ledger row is always written after its outbox row was relayed, so it outlives it.
   */
  prune(options: { olderThanMs: number }): Promise<{ outbox: number; processedTasks: number }>;
}

const defaults = { batchSize: 100 } as const;

type OutboxRow = Selectable<OutboxTable>;

function rowToTask(row: OutboxRow): Task {
  return {
    id: row.task_id,
    family: row.family as TaskFamily,
    tenantId: row.tenant_id,
    type: row.type,
    payload: typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/**
 * Moves outbox rows to the queue. Rows are claimed with `FOR UPDATE SKIP LOCKED` inside a transaction
 * that also marks them relayed, so concurrent relays and sweepers on PostgreSQL never send the same
 * row twice; a crash between send and commit re-sends it later (at-least-once), which the workers'
 * idempotency ledger turns into exactly once in effect.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, queue, logger } = options;
  const batchSize = options.batchSize ?? defaults.batchSize;

  /** One claim → send → mark round; returns how many rows it claimed and whether the send worked. */
  async function relayBatch(filter: { taskIds?: string[]; olderThanMs?: number }): Promise<{ claimed: number; ok: boolean }> {
    return db.kysely.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('outbox')
        .selectAll()
        .where('relayed_at', 'is', null)
        .$if(filter.taskIds !== undefined, (qb) => qb.where('task_id', 'in', filter.taskIds!))
        .$if(filter.olderThanMs !== undefined, (qb) =>
          qb.where('created_at', '<', sql<Date>`now() - make_interval(secs => ${filter.olderThanMs! / 1000})`))
        .orderBy('id')
        .limit(batchSize)
        .forUpdate()
        .skipLocked()
        .execute();
      if (rows.length === 0) return { claimed: 0, ok: true };
      const ids = rows.map((r) => r.id);
      try {
        await queue.send(rows.map(rowToTask));
      } catch (error) {
        logger?.warn('outbox relay could not send; the sweep will retry', {
          tasks: rows.length,
          error: error instanceof Error ? error.message : String(error),
        });
        await trx.updateTable('outbox').set((eb) => ({ relay_attempts: eb('relay_attempts', '+', 1) })).where('id', 'in', ids).execute();
        return { claimed: rows.length, ok: false };
      }
      await trx.updateTable('outbox').set({ relayed_at: sql`now()` }).where('id', 'in', ids).execute();
      return { claimed: rows.length, ok: true };
    });
  }

  /** Repeats rounds until a round claims less than a full batch or the queue fails. */
  async function relayAll(filter: { taskIds?: string[]; olderThanMs?: number }): Promise<RelayResult> {
    const result: RelayResult = { relayed: 0, failed: 0 };
    for (;;) {
      const { claimed, ok } = await relayBatch(filter);
      if (!ok) {
        result.failed += claimed;
        return result;
      }
      result.relayed += claimed;
      if (claimed < batchSize) return result;
    }
  }

  return {
    async relayNow(taskIds) {
      if (taskIds === undefined) return relayAll({});
      const result: RelayResult = { relayed: 0, failed: 0 };
      for (let i = 0; i < taskIds.length; i += batchSize) {
        const chunk = await relayAll({ taskIds: taskIds.slice(i, i + batchSize) });
        result.relayed += chunk.relayed;
        result.failed += chunk.failed;
      }
      return result;
    },

    sweep({ olderThanMs }) {
      return relayAll({ olderThanMs });
    },

    async requeueUnprocessed() {
      const result = await db.kysely
        .updateTable('outbox')
        .set({ relayed_at: null })
        .where('relayed_at', 'is not', null)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('processed_tasks').select('task_id').whereRef('processed_tasks.task_id', '=', 'outbox.task_id'))))
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async prune({ olderThanMs }) {
      const cutoff = sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`;
      const outbox = await db.kysely.deleteFrom('outbox').where('relayed_at', '<', cutoff).executeTakeFirst();
      const ledger = await db.kysely.deleteFrom('processed_tasks').where('processed_at', '<', cutoff).executeTakeFirst();
      return { outbox: Number(outbox.numDeletedRows), processedTasks: Number(ledger.numDeletedRows) };
    },
  };
}
