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

/** Producer side of a queue. Consumers are SQS event sources on AWS and the local runner locally. */
export interface Queue {
  readonly kind: string;
  send(tasks: Task[]): Promise<void>;
  close(): Promise<void>;
}
