import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes } from 'aws-lambda';
import { DependencyError } from '../../errors.ts';
import { systemClock, type Clock } from '../../ports/clock.ts';
import { MAX_DELAY_SECONDS, REDRIVE_DEFAULT_LIMIT, TASK_FAMILIES, type DeadLetterQueues, type Queue, type SendOptions, type Task, type TaskFamily } from '../../ports/queue.ts';
import { stringAttribute, toSqsRecord, type StoredMessage } from './sqs-record.ts';

/** A Lambda SQS handler: the same function the worker Lambda exports. Throwing fails the whole batch. */
export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

export interface LocalQueueOptions {
  /** how long a received message stays invisible before it can be received again (SQS default 30 s) */
  visibilityTimeoutMs?: number;
  /** receives after which a message moves to its family's DLQ (the redrive policy's maxReceiveCount) */
  maxReceives?: number;
  /** records per handler invocation (the event source mapping's BatchSize) */
  batchSize?: number;
  /** batches in flight at once per family (the event source mapping's maximum concurrency) */
  concurrency?: number;
  /**
   * Delay before a failed message is visible again, by receive count. Unset = it stays invisible until
   * its visibility timeout ends, exactly as SQS does with `batchItemFailures`.
   */
  retryDelayMs?: (receiveCount: number) => number;
  /** largest body accepted, as SQS enforces it (256 KiB) */
  maxMessageBytes?: number;
  /** time source; tests move time with `tick()` instead of sleeping */
  clock?: Clock;
  /** names the queues in each record's `eventSourceARN` */
  queueNamePrefix?: string;
  /** called when a batch handler throws; the queue never logs task bodies itself */
  onHandlerError?: (family: TaskFamily, error: unknown) => void;
}

const defaults = {
  visibilityTimeoutMs: 30_000,
  maxReceives: 5,
  batchSize: 10,
  concurrency: 2,
  maxMessageBytes: 262_144,
  queueNamePrefix: 'memorysync',
} as const;

/** A message parked after `maxReceives` failed deliveries. */
export interface DeadLetter {
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: Date;
  deadAt: Date;
  /** the message of the error the last failing batch threw, when it threw */
  lastError: string | undefined;
}

export interface FamilyQueueStats {
  /** receivable now */
  visible: number;
  /** received and not yet deleted, or waiting out a retry delay */
  invisible: number;
  deadLetters: number;
  inFlightBatches: number;
}

export interface RunUntilIdleOptions {
  /**
   * Jump the queue's time over visibility timeouts and retry delays until every message is deleted or
   * dead-lettered, so tests see retries and the DLQ without waiting.
   */
  advanceTime?: boolean;
}

export interface LocalQueue extends Queue {
  readonly kind: 'local';
  readonly dlq: DeadLetterQueues;
  /** Attaches the family's SQS handler (what the event source mapping does on AWS). */
  consume(family: TaskFamily, handler: SqsBatchHandler): void;
  /** Polls with real timers until `drain` or `stop`: the local server's mode. */
  start(): void;
  /** Delivers until no message is receivable and no batch is in flight: the tests' mode. */
  runUntilIdle(options?: RunUntilIdleOptions): Promise<void>;
  /** Moves the queue's time forward. */
  tick(ms: number): void;
  /** Stops receiving and waits up to `timeoutMs` for in-flight batches; true when all finished. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops receiving without waiting. */
  stop(): void;
  stats(family: TaskFamily): FamilyQueueStats;
  deadLetters(family: TaskFamily): DeadLetter[];
  /** Moves dead letters (all, or the given ids) back to the queue with a fresh receive count. */
  redrive(family: TaskFamily, messageIds?: string[]): number;
}

interface FamilyQueue {
  family: TaskFamily;
  eventSourceARN: string;
  messages: Map<string, StoredMessage>;
  dead: Map<string, { message: StoredMessage; deadAt: number }>;
  handler: SqsBatchHandler | undefined;
  inFlight: number;
}

/**
 * An in-process queue with SQS semantics, one queue and DLQ per task family, that invokes the very
 * worker handlers the SQS-triggered Lambdas run. Messages live in memory: the outbox is what makes
 * tasks survive a restart.
 */
export function createLocalQueue(options: LocalQueueOptions = {}): LocalQueue {
  const opts = { ...defaults, ...options };
  const clock = options.clock ?? systemClock;
  let offsetMs = 0;
  const now = () => clock.now().getTime() + offsetMs;
  const region = 'local';

  const queues = new Map<TaskFamily, FamilyQueue>(
    TASK_FAMILIES.map((family) => [family, {
      family,
      eventSourceARN: `arn:aws:sqs:${region}:000000000000:${opts.queueNamePrefix}-${family}`,
      messages: new Map(),
      dead: new Map(),
      handler: undefined,
      inFlight: 0,
    }]),
  );
  const inFlight = new Set<Promise<void>>();
  let state: 'idle' | 'running' | 'stopped' = 'idle';
  let wakeTimer: NodeJS.Timeout | undefined;
  let wakePending = false;

  function newMessage(body: string, messageAttributes: SQSMessageAttributes, at: number): StoredMessage {
    return {
      messageId: randomUUID(),
      body,
      messageAttributes,
      sentAt: at,
      receiveCount: 0,
      firstReceiveAt: undefined,
      visibleAt: at,
      receiptHandle: undefined,
      lastError: undefined,
    };
  }

  function queueOf(family: TaskFamily): FamilyQueue {
    const q = queues.get(family);
    if (!q) throw new Error(`Unknown task family: ${family}`);
    return q;
  }

  /** Takes up to one batch of receivable messages; over-received ones move to the DLQ on the way. */
  function receive(q: FamilyQueue): StoredMessage[] {
    const at = now();
    const batch: StoredMessage[] = [];
    for (const message of q.messages.values()) {
      if (message.visibleAt > at) continue;
      if (message.receiveCount >= opts.maxReceives) {
        q.messages.delete(message.messageId);
        q.dead.set(message.messageId, { message, deadAt: at });
        continue;
      }
      if (batch.length === opts.batchSize) break;
      message.receiveCount += 1;
      message.firstReceiveAt ??= at;
      message.visibleAt = at + opts.visibilityTimeoutMs;
      message.receiptHandle = randomUUID();
      batch.push(message);
    }
    return batch;
  }

  async function deliver(q: FamilyQueue, handler: SqsBatchHandler, batch: StoredMessage[]): Promise<void> {
    const handles = new Map(batch.map((m) => [m.messageId, m.receiptHandle]));
    let failed: Set<string>;
    let error: string | undefined;
    try {
      const response = await handler({ Records: batch.map((m) => toSqsRecord(m, q.eventSourceARN, region)) });
      const ids = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
      // Lambda treats an empty or unknown itemIdentifier as a failure of the whole batch.
      failed = ids.every((id) => id && handles.has(id)) ? new Set(ids) : new Set(handles.keys());
    } catch (err) {
      failed = new Set(handles.keys());
      error = err instanceof Error ? err.message : String(err);
      try {
        opts.onHandlerError?.(q.family, err);
      } catch {
        // a failing error hook must not wedge the queue
      }
    }
    for (const [messageId, handle] of handles) {
      const message = q.messages.get(messageId);
      if (!message || message.receiptHandle !== handle) continue;
      if (!failed.has(messageId)) {
        q.messages.delete(messageId);
      } else {
        message.lastError = error;
        if (options.retryDelayMs) message.visibleAt = now() + options.retryDelayMs(message.receiveCount);
      }
    }
  }

  /** Starts every batch the concurrency bound allows; returns whether it started any. */
  function pump(): boolean {
    if (state === 'stopped') return false;
    let started = false;
    for (const q of queues.values()) {
      const handler = q.handler;
      if (!handler) continue;
      while (q.inFlight < opts.concurrency) {
        const batch = receive(q);
        if (batch.length === 0) break;
        started = true;
        q.inFlight += 1;
        const run = deliver(q, handler, batch).finally(() => {
          q.inFlight -= 1;
          inFlight.delete(run);
          wake();
        });
        inFlight.add(run);
      }
    }
    return started;
  }

  /** Earliest time a message of a consumed family becomes receivable, if any waits. */
  function nextVisibleAt(): number | undefined {
    let next: number | undefined;
    for (const q of queues.values()) {
      if (!q.handler) continue;
      for (const m of q.messages.values()) {
        if (next === undefined || m.visibleAt < next) next = m.visibleAt;
      }
    }
    return next;
  }

  /** In running mode: pump soon, and set one timer for the next message that becomes visible. */
  function wake(): void {
    if (state !== 'running' || wakePending) return;
    wakePending = true;
    setImmediate(() => {
      wakePending = false;
      if (state !== 'running') return;
      pump();
      clearTimeout(wakeTimer);
      const next = nextVisibleAt();
      if (next !== undefined && next > now()) {
        wakeTimer = setTimeout(wake, Math.min(next - now(), 2_147_483_647));
        wakeTimer.unref();
      }
    });
  }

  function halt(): void {
    state = 'stopped';
    clearTimeout(wakeTimer);
    wakeTimer = undefined;
  }

  function redrive(family: TaskFamily, messageIds?: string[], limit = Number.POSITIVE_INFINITY): number {
    const q = queueOf(family);
    const ids = messageIds ?? [...q.dead.keys()];
    const at = now();
    let moved = 0;
    for (const id of ids) {
      if (moved >= limit) break;
      const dead = q.dead.get(id);
      if (!dead) continue;
      q.dead.delete(id);
      q.messages.set(id, { ...newMessage(dead.message.body, dead.message.messageAttributes, at), messageId: id });
      moved += 1;
    }
    wake();
    return moved;
  }

  return {
    kind: 'local',

    dlq: {
      async counts() {
        return TASK_FAMILIES.map((family) => ({ family, messages: queueOf(family).dead.size }));
      },
      async redrive(family, { limit = REDRIVE_DEFAULT_LIMIT } = {}) {
        const moved = redrive(family, undefined, limit);
        return { family, moved, remaining: queueOf(family).dead.size };
      },
    },

    async send(tasks: Task[], { delaySeconds = 0 }: SendOptions = {}): Promise<void> {
      if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
        throw new DependencyError('queue', `delaySeconds must be an integer from 0 to ${MAX_DELAY_SECONDS}`);
      }
      const prepared = tasks.map((task) => {
        const q = queueOf(task.family);
        const body = JSON.stringify(task);
        if (Buffer.byteLength(body) > opts.maxMessageBytes) {
          throw new DependencyError('queue', `Task ${task.id} is larger than the ${opts.maxMessageBytes}-byte message limit`);
        }
        return { q, body, task };
      });
      const at = now();
      for (const { q, body, task } of prepared) {
        const message = newMessage(body, { family: stringAttribute(task.family), type: stringAttribute(task.type) }, at);
        message.visibleAt = at + delaySeconds * 1000;
        q.messages.set(message.messageId, message);
      }
      wake();
    },

    consume(family, handler) {
      queueOf(family).handler = handler;
      wake();
    },

    start() {
      state = 'running';
      wake();
    },

    async runUntilIdle({ advanceTime = false }: RunUntilIdleOptions = {}) {
      for (;;) {
        pump();
        if (inFlight.size > 0) {
          await Promise.race(inFlight);
          continue;
        }
        const next = advanceTime && state !== 'stopped' ? nextVisibleAt() : undefined;
        if (next === undefined) return;
        if (next > now()) offsetMs += next - now();
      }
    },

    tick(ms) {
      offsetMs += ms;
      wake();
    },

    async drain(timeoutMs) {
      halt();
      if (inFlight.size === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const finished = (async () => {
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        return true as const;
      })();
      try {
        return await Promise.race([finished, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },

    stop: halt,

    async close() {
      halt();
    },

    stats(family) {
      const q = queueOf(family);
      const at = now();
      let visible = 0;
      for (const m of q.messages.values()) if (m.visibleAt <= at) visible += 1;
      return { visible, invisible: q.messages.size - visible, deadLetters: q.dead.size, inFlightBatches: q.inFlight };
    },

    deadLetters(family) {
      return [...queueOf(family).dead.values()].map(({ message, deadAt }) => ({
        messageId: message.messageId,
        body: message.body,
        receiveCount: message.receiveCount,
        sentAt: new Date(message.sentAt),
        deadAt: new Date(deadAt),
        lastError: message.lastError,
      }));
    },

    redrive(family, messageIds) {
      return redrive(family, messageIds);
    },
  };
}
