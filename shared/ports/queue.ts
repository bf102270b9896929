/** Task families; each has its own queue (and DLQ) on AWS and locally. */
export const TASK_FAMILIES = [
  'embedding',
  'summarization',
  'intelligence',
  'integration-sync',
  'webhook-delivery',
  'siem-forwarding',
  'retention',
] as const;
export type TaskFamily = (typeof TASK_FAMILIES)[number];

/** A deferred unit of work. `id` is the idempotency key: handlers run each id at most once in effect. */
export interface Task<P = Record<string, unknown>> {
  id: string;
  family: TaskFamily;
  tenantId: string | null;
  type: string;
  payload: P;
  createdAt: string;
}

/** Dead letters of one family: how many its DLQ holds (approximate on SQS). */
export interface DeadLetterCount {
  family: TaskFamily;
  /** messages in the DLQ, visible or being moved */
  messages: number;
}

export interface RedriveOutcome {
  family: TaskFamily;
  /** dead letters moved back to the family's queue in this call */
  moved: number;
  /** what the DLQ still holds afterwards (approximate on SQS); a bounded call may leave some */
  remaining: number;
}

/**
 * Inspection and re-drive of the per-family dead-letter queues. A re-driven message goes back to its
 * family's queue as a new message (receive count 0) with the same body, so the task keeps its id and
 * the worker's `processed_tasks` ledger still makes it run at most once in effect.
 */
export interface DeadLetterQueues {
  counts(): Promise<DeadLetterCount[]>;
  /** Moves up to `limit` (default 100) dead letters of `family` back to its queue. */
  redrive(family: TaskFamily, options?: { limit?: number }): Promise<RedriveOutcome>;
}

/** Producer side of a queue. Consumers are SQS event sources on AWS and the local runner locally. */
export interface SendOptions {
  /** seconds before the tasks can be received (0–900, SQS DelaySeconds); default 0 */
  delaySeconds?: number;
}

/** SQS accepts a per-message delay of at most 15 minutes. */
export const MAX_DELAY_SECONDS = 900;

export interface Queue {
  readonly kind: string;
  send(tasks: Task[], options?: SendOptions): Promise<void>;
  close(): Promise<void>;
  /** present when the queue knows its DLQs (the local queue always; SQS with SQS_DLQ_URLS) */
  readonly dlq?: DeadLetterQueues;
}

/** Default and largest number of dead letters one re-drive call moves. */
export const REDRIVE_DEFAULT_LIMIT = 100;
export const REDRIVE_MAX_LIMIT = 1_000;
