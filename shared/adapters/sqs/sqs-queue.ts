import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DependencyError } from '../../errors.ts';
import { MAX_DELAY_SECONDS, REDRIVE_DEFAULT_LIMIT, TASK_FAMILIES, type DeadLetterQueues, type Queue, type SendOptions, type Task, type TaskFamily } from '../../ports/queue.ts';

export interface SqsQueueOptions {
  client: SQSClient;
  /** queue URL per task family (CDK passes them as SQS_QUEUE_URLS) */
  queueUrls: Partial<Record<TaskFamily, string>>;
  /** DLQ URL per task family (CDK passes them as SQS_DLQ_URLS to the API function); enables `dlq` */
  deadLetterQueueUrls?: Partial<Record<TaskFamily, string>>;
  /** how long a dead letter being moved stays invisible in its DLQ (seconds); default 60 */
  redriveVisibilitySeconds?: number;
  /** attempts for entries SQS reports as failed without sender fault; default 3 */
  maxAttempts?: number;
  /** first backoff delay; doubled per attempt, with full jitter; default 100 ms */
  baseDelayMs?: number;
  /** per-message and per-batch byte limit; default 256 KiB (the limit every SQS queue accepts) */
  maxBytes?: number;
  /** injectable for tests */
  sleep?: (ms: number) => Promise<void>;
}

const defaults = {
  maxAttempts: 3,
  baseDelayMs: 100,
  maxBytes: 262_144,
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};

/** SendMessageBatch accepts at most 10 entries. */
const MAX_BATCH_ENTRIES = 10;

interface PreparedEntry {
  task: Task;
  entry: SendMessageBatchRequestEntry;
  bytes: number;
}

/**
 * Producer for the per-family SQS queues. Tasks are grouped by family and sent with
 * SendMessageBatch (10 entries and the byte limit per call); only the entries SQS reports as failed
 * are retried, so a retry never duplicates a delivered message. Delivery is at-least-once overall:
 * if `send` throws, some tasks may already be queued and callers may resend (task ids are
 * idempotency keys). The adapter does not own the client; whoever created it destroys it.
 */
export function createSqsQueue(options: SqsQueueOptions): Queue {
  const opts = { ...defaults, ...options };
  let closed = false;

  async function sendFamily(queueUrl: string, entries: PreparedEntry[]): Promise<void> {
    for (const batch of chunkEntries(entries, opts.maxBytes)) await sendBatch(queueUrl, batch);
  }

  async function sendBatch(queueUrl: string, batch: PreparedEntry[]): Promise<void> {
    let pending = batch;
    for (let attempt = 1; ; attempt++) {
      const byId = new Map(pending.map((p) => [p.entry.Id!, p]));
      let result;
      try {
        result = await opts.client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map((p) => p.entry) }));
      } catch (cause) {
        throw new DependencyError('queue', `SendMessageBatch failed: ${describe(cause)}`, { cause });
      }
      const failures = (result.Failed ?? []).flatMap((f) => {
        const entry = byId.get(f.Id ?? '');
        return entry ? [{ entry, code: f.Code ?? 'unknown', senderFault: f.SenderFault === true }] : [];
      });
      if (failures.length === 0) return;
      // A sender fault (bad attribute, too large…) fails the same way every time: no retry.
      if (attempt >= opts.maxAttempts || failures.some((f) => f.senderFault)) {
        const list = failures.map((f) => `${f.entry.task.id} (${f.code})`).join(', ');
        throw new DependencyError('queue', `SQS rejected ${failures.length} task(s): ${list}`);
      }
      pending = failures.map((f) => f.entry);
      await opts.sleep(Math.random() * opts.baseDelayMs * 2 ** (attempt - 1));
    }
  }

  const dlq = options.deadLetterQueueUrls && Object.keys(options.deadLetterQueueUrls).length > 0
    ? sqsDeadLetterQueues(opts.client, opts.queueUrls, options.deadLetterQueueUrls, opts.redriveVisibilitySeconds ?? 60)
    : undefined;

  return {
    kind: 'sqs',
    ...(dlq ? { dlq } : {}),
    async send(tasks: Task[], { delaySeconds = 0 }: SendOptions = {}): Promise<void> {
      if (closed) throw new DependencyError('queue', 'queue is closed');
      if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
        throw new DependencyError('queue', `delaySeconds must be an integer from 0 to ${MAX_DELAY_SECONDS}`);
      }
      if (tasks.length === 0) return;
      const byFamily = new Map<string, PreparedEntry[]>();
      // Validate everything before sending anything: a task that can never be delivered should
      // not leave half of its siblings queued.
      for (const task of tasks) {
        const queueUrl = opts.queueUrls[task.family];
        if (!queueUrl) throw new DependencyError('queue', `no SQS queue configured for task family ${task.family}`);
        const prepared = prepareEntry(task, 0, delaySeconds);
        if (prepared.bytes > opts.maxBytes) {
          throw new DependencyError('queue', `task ${task.id} is ${prepared.bytes} bytes; SQS accepts at most ${opts.maxBytes}`);
        }
        const list = byFamily.get(queueUrl) ?? [];
        list.push(prepared);
        byFamily.set(queueUrl, list);
      }
      await Promise.all([...byFamily].map(([queueUrl, entries]) => sendFamily(queueUrl, entries)));
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * Dead-letter tooling over the SQS API. fauxqs (the test double the adapter is tested on) does not
 * implement StartMessageMoveTask, so the move is done by hand in bounded batches: receive up to 10
 * from the DLQ (hidden for `visibilitySeconds`), SendMessageBatch them to the family's queue with the
 * same body and attributes, then delete from the DLQ exactly the ones that were sent. A crash between
 * send and delete leaves a copy in the DLQ that reappears later; the task id is unchanged, so the
 * worker's ledger runs it at most once in effect. Unlike a move task this answers synchronously with
 * how many moved, and a call moves at most `limit`, so it fits in an API request.
 */
function sqsDeadLetterQueues(
  client: SQSClient,
  queueUrls: Partial<Record<TaskFamily, string>>,
  dlqUrls: Partial<Record<TaskFamily, string>>,
  visibilitySeconds: number,
): DeadLetterQueues {
  const urlsOf = (family: TaskFamily) => {
    const source = queueUrls[family];
    const dlq = dlqUrls[family];
    if (!source || !dlq) throw new DependencyError('queue', `no SQS queue or DLQ configured for task family ${family}`);
    return { source, dlq };
  };
  const depth = async (queueUrl: string): Promise<number> => {
    try {
      const { Attributes = {} } = await client.send(new GetQueueAttributesCommand({
        QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }));
      return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
    } catch (cause) {
      throw new DependencyError('queue', `GetQueueAttributes failed: ${describe(cause)}`, { cause });
    }
  };
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (cause) {
      throw new DependencyError('queue', `${what} failed: ${describe(cause)}`, { cause });
    }
  };
  return {
    async counts() {
      const families = TASK_FAMILIES.filter((f) => dlqUrls[f]);
      return Promise.all(families.map(async (family) => ({ family, messages: await depth(dlqUrls[family]!) })));
    },
    async redrive(family, { limit = REDRIVE_DEFAULT_LIMIT } = {}) {
      const { source, dlq } = urlsOf(family);
      let moved = 0;
      while (moved < limit) {
        const { Messages = [] } = await call('ReceiveMessage', () => client.send(new ReceiveMessageCommand({
          QueueUrl: dlq, MaxNumberOfMessages: Math.min(MAX_BATCH_ENTRIES, limit - moved), WaitTimeSeconds: 1,
          VisibilityTimeout: visibilitySeconds, MessageAttributeNames: ['All'],
        })));
        if (Messages.length === 0) break;
        const byId = new Map(Messages.map((m, i) => [String(i), m]));
        const sent = await call('SendMessageBatch', () => client.send(new SendMessageBatchCommand({
          QueueUrl: source,
          Entries: [...byId].map(([Id, m]) => ({ Id, MessageBody: m.Body ?? '', MessageAttributes: copyAttributes(m) })),
        })));
        const ok = (sent.Successful ?? []).flatMap((e) => (byId.has(e.Id ?? '') ? [byId.get(e.Id!)!] : []));
        if (ok.length > 0) {
          await call('DeleteMessageBatch', () => client.send(new DeleteMessageBatchCommand({
            QueueUrl: dlq, Entries: ok.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          })));
        }
        moved += ok.length;
        // Entries SQS refused stay in the DLQ (visible again after the timeout); stop rather than spin on them.
        if (ok.length < Messages.length) break;
      }
      return { family, moved, remaining: await depth(dlq) };
    },
  };
}

/** The message attributes of a received message in the shape SendMessage accepts. */
function copyAttributes(message: Message): Record<string, MessageAttributeValue> | undefined {
  const attributes = message.MessageAttributes;
  if (!attributes || Object.keys(attributes).length === 0) return undefined;
  return Object.fromEntries(Object.entries(attributes).map(([name, v]) => [name, {
    DataType: v.DataType,
    ...(v.StringValue !== undefined ? { StringValue: v.StringValue } : {}),
    ...(v.BinaryValue !== undefined ? { BinaryValue: v.BinaryValue } : {}),
  }]));
}

/** Body is the Task as JSON; attributes let consumers and DLQ tooling route without parsing the body. */
function prepareEntry(task: Task, index: number, delaySeconds = 0): PreparedEntry {
  const body = toSqsSafeJson(task);
  const attributes: Record<string, MessageAttributeValue> = {
    family: { DataType: 'String', StringValue: task.family },
    type: { DataType: 'String', StringValue: task.type },
    taskId: { DataType: 'String', StringValue: task.id },
  };
  // SQS rejects empty attribute values, so a tenant-less task simply has no tenantId attribute.
  if (task.tenantId) attributes.tenantId = { DataType: 'String', StringValue: task.tenantId };
  let bytes = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType!) + Buffer.byteLength(value.StringValue!);
  }
  return { task, bytes, entry: { Id: String(index), MessageBody: body, MessageAttributes: attributes, ...(delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {}) } };
}

/**
 * JSON that SQS accepts whatever the payload holds. SQS refuses some characters in a body
 * (U+FFFE, U+FFFF and, in some implementations, anything beyond the BMP). JSON.stringify already
 * escapes control characters and lone surrogates; escaping the remaining surrogate halves and
 * non-characters as \uXXXX keeps the JSON equivalent: JSON.parse restores the same string.
 */
function toSqsSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\uD800-\uDFFF\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Splits entries into SendMessageBatch calls of at most 10 entries and `maxBytes` in total. */
function chunkEntries(entries: PreparedEntry[], maxBytes: number): PreparedEntry[][] {
  const batches: PreparedEntry[][] = [];
  let current: PreparedEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length === MAX_BATCH_ENTRIES || (current.length > 0 && bytes + entry.bytes > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    // entry ids only need to be unique within one batch
    current.push({ ...entry, entry: { ...entry.entry, Id: String(current.length) } });
    bytes += entry.bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
