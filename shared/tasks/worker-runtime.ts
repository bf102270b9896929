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

/** The ids among `taskIds` that the idempotency ledger already holds. */
export async function processedTaskIds(db: Kysely<Database>, taskIds: string[]): Promise<Set<string>> {
  if (taskIds.length === 0) return new Set();
  const rows = await db.selectFrom('processed_tasks').select('task_id').where('task_id', 'in', taskIds).execute();
  return new Set(rows.map((r) => r.task_id));
}

/** Inserts ledger rows; returns how many were new (the others were recorded by another delivery). */
async function recordProcessed(db: Kysely<Database>, tasks: Task[]): Promise<number> {
  if (tasks.length === 0) return 0;
  const rows = await db
    .insertInto('processed_tasks')
    .values(tasks.map((task) => ({ task_id: task.id, family: task.family })))
    .onConflict((oc) => oc.column('task_id').doNothing())
    .returning('task_id')
    .execute();
  return rows.length;
}

/** Each record's task, or the error that makes it unprocessable. */
function parseRecords(records: SQSRecord[]): Map<string, Task | Error> {
  return new Map(records.map((record): [string, Task | Error] => {
    try {
      return [record.messageId, sqsRecordToTask(record)];
    } catch (error) {
      return [record.messageId, error instanceof Error ? error : new Error(String(error))];
    }
  }));
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

  /** Runs one task; returns it when the ledger row is still to be written (no ctx.transaction). */
  async function processTask(task: Task, receiveCount: number): Promise<Task | undefined> {
    const keys = { taskId: task.id, family: task.family, taskType: task.type, tenantId: task.tenantId };
    if (task.family !== family) throw new UnroutableTaskError(`Task ${task.id} of family ${task.family} reached the ${family} worker`);
    const handler = handlers[task.type];
    if (!handler) throw new UnroutableTaskError(`No ${family} handler for task type ${task.type}`);

    let ledgerCommitted = false;
    let childLogger: Logger | undefined;
    const ctx: TaskContext = {
      db,
      get logger() {
        return (childLogger ??= logger.createChild({ persistentKeys: keys }));
      },
      receiveCount,
      async transaction(fn) {
        if (ledgerCommitted) throw new Error('ctx.transaction runs once per task; use ctx.db for other queries');
        const result = await db.kysely.transaction().execute(async (trx) => {
          // Inserted first: a concurrent delivery of the same task waits on this row, then skips.
          if ((await recordProcessed(trx, [task])) === 0) throw new TaskAlreadyProcessedError();
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
        return undefined;
      }
      logger.warn('task failed', { ...keys, receiveCount, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      throw error;
    }
    return ledgerCommitted ? undefined : task;
  }

  return async (event) => {
    const tasks = parseRecords(event.Records);
    const ids = [...tasks.values()].flatMap((t) => (t instanceof Error ? [] : [t.id]));
    const alreadyProcessed = await processedTaskIds(db.kysely, ids);
    const unrecorded: Task[] = [];
    // A task delivered twice within one batch runs once; the copy shares the first one's outcome.
    const runs = new Map<string, Promise<void>>();
    const processRecord = async (record: SQSRecord): Promise<void> => {
      const task = tasks.get(record.messageId)!;
      if (task instanceof Error) throw task;
      if (alreadyProcessed.has(task.id)) {
        logger.info('task already processed; acknowledged', { taskId: task.id, family: task.family });
        return;
      }
      let run = runs.get(task.id);
      if (!run) {
        run = processTask(task, Number(record.attributes.ApproximateReceiveCount) || 1).then((done) => {
          if (done) unrecorded.push(done);
        });
        runs.set(task.id, run);
      }
      await run;
    };
    // A processor keeps per-batch state, so concurrent local invocations each get their own.
    const processor = new BatchProcessor(EventType.SQS, { logger });
    const response = await processPartialResponse(event, processRecord, processor, {
      throwOnFullBatchFailure: false,
      processInParallel: options.processInParallel ?? false,
    });
    // Ledger rows of handlers that did not use ctx.transaction, in one statement; if it fails, the
    // batch fails and those tasks run again (their effects were never atomic with the ledger).
    await recordProcessed(db.kysely, unrecorded);
    return response;
  };
}
