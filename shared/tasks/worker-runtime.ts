import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Db } from '../ports/db.ts';
import { sqsRecordToTask } from '../adapters/sqs/sqs-record.ts';
import type { Task, TaskFamily } from '../ports/queue.ts';

/** What a task handler gets besides its task. */
export interface TaskContext {
  readonly db: Db;
  /** carries the task id, family, type and tenant id on every line */
  readonly logger: Logger;
  /** 1 on the first delivery; SQS counts every receive */
  readonly receiveCount: number;
  /**
   * Runs `fn` in a transaction that also records the task in the idempotency ledger, so the task's
   * database effects and "done" commit together: exactly once in effect. Once per task.
   */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
}

export type TaskHandler<P = any> = (task: Task<P>, ctx: TaskContext) => Promise<void>;

export interface TaskWorkerOptions {
  db: Db;
  logger?: Logger;
  /** run the records of a batch concurrently; off by default so a batch holds one connection */
  processInParallel?: boolean;
}

export type TaskWorker = (event: SQSEvent) => Promise<SQSBatchResponse>;

/** A task routed to the wrong worker or of a type it has no handler for; retrying cannot help, so it ends in the DLQ. */
export class UnroutableTaskError extends Error {
  override readonly name = 'UnroutableTaskError';
}

/** Raised inside the ledger transaction when another delivery of the same task already committed. */
class TaskAlreadyProcessedError extends Error {}

/** Whether the idempotency ledger already holds the task. */
export async function isTaskProcessed(db: Kysely<Database>, taskId: string): Promise<boolean> {
  const row = await db.selectFrom('processed_tasks').select('task_id').where('task_id', '=', taskId).executeTakeFirst();
  return row !== undefined;
}

/** Inserts the ledger row; false when another delivery already did. */
async function recordProcessed(db: Kysely<Database>, task: Task): Promise<boolean> {
  const row = await db
    .insertInto('processed_tasks')
    .values({ task_id: task.id, family: task.family })
    .onConflict((oc) => oc.column('task_id').doNothing())
    .returning('task_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The SQS handler of one task family, for the worker Lambda and the local queue alike: each record is
 * a task dispatched by `type`; tasks already in the `processed_tasks` ledger are acknowledged without
 * running; failures are reported per record (`batchItemFailures`) so only they are retried, and after
 * the queue's max receives they land in its DLQ.
 */
export function createTaskWorker(
  family: TaskFamily,
  handlers: Record<string, TaskHandler>,
  options: TaskWorkerOptions,
): TaskWorker {
  const { db } = options;
  const logger = options.logger ?? new Logger({ serviceName: 'memorysync-worker' });

  async function processRecord(record: SQSRecord): Promise<void> {
    const task = sqsRecordToTask(record);
    const keys = { taskId: task.id, family: task.family, taskType: task.type, tenantId: task.tenantId };
    if (task.family !== family) throw new UnroutableTaskError(`Task ${task.id} of family ${task.family} reached the ${family} worker`);
    const handler = handlers[task.type];
    if (!handler) throw new UnroutableTaskError(`No ${family} handler for task type ${task.type}`);
    if (await isTaskProcessed(db.kysely, task.id)) {
      logger.info('task already processed; acknowledged', keys);
      return;
    }

    let ledgerCommitted = false;
    const ctx: TaskContext = {
      db,
      logger: logger.createChild({ persistentKeys: keys }),
      receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1,
      async transaction(fn) {
        if (ledgerCommitted) throw new Error('ctx.transaction runs once per task; use ctx.db for other queries');
        const result = await db.kysely.transaction().execute(async (trx) => {
          // Inserted first: a concurrent delivery of the same task waits on this row, then skips.
          if (!(await recordProcessed(trx, task))) throw new TaskAlreadyProcessedError();
          return fn(trx);
        });
        ledgerCommitted = true;
        return result;
      },
    };

    try {
      await handler(task, ctx);
    } catch (error) {
      if (error instanceof TaskAlreadyProcessedError) {
        logger.info('task processed by a concurrent delivery; acknowledged', keys);
        return;
      }
      logger.warn('task failed', { ...keys, receiveCount: ctx.receiveCount, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      throw error;
    }
    if (!ledgerCommitted) await recordProcessed(db.kysely, task);
  }

  return async (event) => {
    // A processor keeps per-batch state, so concurrent local invocations each get their own.
    const processor = new BatchProcessor(EventType.SQS, { logger });
    return processPartialResponse(event, processRecord, processor, {
      throwOnFullBatchFailure: false,
      processInParallel: options.processInParallel ?? false,
    });
  };
}
