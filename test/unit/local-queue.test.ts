import { createHash, randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createLocalQueue, type SqsBatchHandler } from '#shared/adapters/local-queue/index.ts';
import { DependencyError } from '#shared/errors.ts';
import { sqsRecordToTask } from '#shared/adapters/sqs/index.ts';
import { TASK_FAMILIES, type Task, type TaskFamily } from '#shared/ports/queue.ts';
import { queueProducerContract } from '../contract/queue-producer.ts';

function task(type: string, payload: Record<string, unknown> = {}, family: TaskFamily = 'embedding'): Task {
  return { id: randomUUID(), family, tenantId: 'tenant-a', type, payload, createdAt: new Date().toISOString() };
}

/** Time stands still unless a test moves it with `tick()`, so visibility windows are exact. */
const frozenClock = { now: () => new Date('2025-01-01T00:00:00Z') };

const idsOf = (event: SQSEvent) => event.Records.map((r) => (JSON.parse(r.body) as Task).id);

/** A handler that records every event and fails the records whose task type is listed. */
function recordingHandler(failTypes: Set<string> = new Set()) {
  const events: SQSEvent[] = [];
  const handler: SqsBatchHandler = async (event) => {
    events.push(event);
    const batchItemFailures = event.Records
      .filter((r) => failTypes.has((JSON.parse(r.body) as Task).type))
      .map((r) => ({ itemIdentifier: r.messageId }));
    return { batchItemFailures };
  };
  return { events, handler };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

queueProducerContract('local queue', async () => {
  const queue = createLocalQueue();
  const received: Task[] = [];
  for (const family of TASK_FAMILIES) {
    queue.consume(family, async (event) => {
      received.push(...event.Records.map(sqsRecordToTask));
    });
  }
  return {
    queue,
    async receiveAll() {
      await queue.runUntilIdle();
      return received;
    },
  };
});

describe('local queue', () => {
  it('invokes the handler with a Lambda SQS event whose body is the JSON task', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const { events, handler } = recordingHandler();
    queue.consume('embedding', handler);
    const sent = task('embed', { memoryId: 7 });
    await queue.send([sent]);
    await queue.runUntilIdle();

    expect(events).toHaveLength(1);
    const [record] = events[0].Records;
    expect(JSON.parse(record.body)).toEqual(sent);
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(record.receiptHandle).not.toBe('');
    expect(record.eventSource).toBe('aws:sqs');
    expect(record.eventSourceARN).toMatch(/:memorysync-embedding$/);
    expect(record.md5OfBody).toBe(createHash('md5').update(record.body).digest('hex'));
    expect(record.messageAttributes.type.stringValue).toBe('embed');
    expect(queue.stats('embedding')).toEqual({ visible: 0, invisible: 0, deadLetters: 0, inFlightBatches: 0 });
  });

  it('delivers each family only to its own consumer', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const embedding = recordingHandler();
    const webhooks = recordingHandler();
    queue.consume('embedding', embedding.handler);
    queue.consume('webhook-delivery', webhooks.handler);
    const e = task('embed');
    const w = task('deliver', {}, 'webhook-delivery');
    const r = task('sweep', {}, 'retention');
    await queue.send([e, w, r]);
    await queue.runUntilIdle();

    expect(embedding.events.flatMap(idsOf)).toEqual([e.id]);
    expect(webhooks.events.flatMap(idsOf)).toEqual([w.id]);
    expect(queue.stats('retention').visible).toBe(1);
  });

  it('keeps a failed message invisible until its visibility timeout ends, then redelivers it with a higher receive count', async () => {
    const queue = createLocalQueue({ clock: frozenClock, visibilityTimeoutMs: 30_000 });
    const { events, handler } = recordingHandler(new Set(['flaky']));
    queue.consume('embedding', handler);
    await queue.send([task('flaky')]);

    await queue.runUntilIdle();
    expect(events).toHaveLength(1);
    expect(queue.stats('embedding')).toMatchObject({ visible: 0, invisible: 1 });

    queue.tick(29_999);
    await queue.runUntilIdle();
    expect(events).toHaveLength(1);

    queue.tick(1);
    await queue.runUntilIdle();
    expect(events).toHaveLength(2);
    expect(events[1].Records[0].attributes.ApproximateReceiveCount).toBe('2');
    expect(events[1].Records[0].messageId).toBe(events[0].Records[0].messageId);
    expect(events[1].Records[0].receiptHandle).not.toBe(events[0].Records[0].receiptHandle);
  });

  it('deletes the successes of a partially failed batch and redelivers only the failures', async () => {
    const queue = createLocalQueue({ clock: frozenClock, batchSize: 10 });
    const { events, handler } = recordingHandler(new Set(['bad']));
    queue.consume('embedding', handler);
    const good = [task('good'), task('good')];
    const bad = task('bad');
    await queue.send([good[0], bad, good[1]]);

    await queue.runUntilIdle();
    expect(events).toHaveLength(1);
    expect(idsOf(events[0])).toEqual([good[0].id, bad.id, good[1].id]);

    queue.tick(30_000);
    await queue.runUntilIdle();
    expect(events).toHaveLength(2);
    expect(idsOf(events[1])).toEqual([bad.id]);
  });

  it('moves a poison message to its family DLQ after max receives while the rest of its batch is processed', async () => {
    const queue = createLocalQueue({ clock: frozenClock, maxReceives: 3 });
    const processed: string[] = [];
    let poisonAttempts = 0;
    queue.consume('embedding', async (event) => {
      const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
      for (const record of event.Records) {
        const t = JSON.parse(record.body) as Task;
        if (t.type === 'poison') {
          poisonAttempts += 1;
          batchItemFailures.push({ itemIdentifier: record.messageId });
        } else {
          processed.push(t.id);
        }
      }
      return { batchItemFailures };
    });
    const poison = task('poison');
    const others = [task('embed'), task('embed'), task('embed')];
    await queue.send([others[0], poison, others[1], others[2]]);

    await queue.runUntilIdle({ advanceTime: true });

    expect(processed.sort()).toEqual(others.map((t) => t.id).sort());
    expect(poisonAttempts).toBe(3);
    const dead = queue.deadLetters('embedding');
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0].body)).toEqual(poison);
    expect(dead[0].receiveCount).toBe(3);
    expect(queue.stats('embedding')).toEqual({ visible: 0, invisible: 0, deadLetters: 1, inFlightBatches: 0 });
    expect(queue.deadLetters('summarization')).toEqual([]);
  });

  it('redrives a dead letter back to its queue with a fresh receive count', async () => {
    const queue = createLocalQueue({ clock: frozenClock, maxReceives: 2 });
    let healed = false;
    const seen: string[] = [];
    queue.consume('embedding', async (event) => {
      seen.push(...event.Records.map((r) => r.attributes.ApproximateReceiveCount));
      if (!healed) throw new Error('dependency down');
    });
    await queue.send([task('embed')]);
    await queue.runUntilIdle({ advanceTime: true });
    const [dead] = queue.deadLetters('embedding');
    expect(dead.lastError).toBe('dependency down');

    healed = true;
    expect(queue.redrive('embedding', [dead.messageId])).toBe(1);
    await queue.runUntilIdle();

    expect(seen).toEqual(['1', '2', '1']);
    expect(queue.deadLetters('embedding')).toEqual([]);
    expect(queue.stats('embedding')).toMatchObject({ visible: 0, invisible: 0 });
  });

  it('counts and re-drives dead letters through the DeadLetterQueues port, at most `limit` per call', async () => {
    const queue = createLocalQueue({ clock: frozenClock, maxReceives: 1 });
    let healed = false;
    const ran: string[] = [];
    queue.consume('retention', async (event) => {
      if (!healed) throw new Error('down');
      ran.push(...idsOf(event));
    });
    const sent = [task('sweep', {}, 'retention'), task('sweep', {}, 'retention'), task('sweep', {}, 'retention')];
    await queue.send(sent);
    await queue.runUntilIdle({ advanceTime: true });
    const counts = await queue.dlq.counts();
    expect(counts.map((c) => c.family)).toEqual([...TASK_FAMILIES]);
    expect(counts.find((c) => c.family === 'retention')!.messages).toBe(3);
    expect(counts.filter((c) => c.family !== 'retention').every((c) => c.messages === 0)).toBe(true);

    healed = true;
    expect(await queue.dlq.redrive('retention', { limit: 2 })).toEqual({ family: 'retention', moved: 2, remaining: 1 });
    await queue.runUntilIdle();
    expect(ran).toHaveLength(2);
    expect(await queue.dlq.redrive('retention')).toEqual({ family: 'retention', moved: 1, remaining: 0 });
    await queue.runUntilIdle();
    expect(ran.sort()).toEqual(sent.map((t) => t.id).sort());
    expect(await queue.dlq.redrive('retention')).toEqual({ family: 'retention', moved: 0, remaining: 0 });
  });

  it('holds a delayed send invisible for delaySeconds, and refuses a delay SQS would refuse', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const { events, handler } = recordingHandler();
    queue.consume('webhook-delivery', handler);
    const later = task('deliver', {}, 'webhook-delivery');
    await queue.send([later], { delaySeconds: 5 });
    await queue.runUntilIdle();
    expect(events).toHaveLength(0);
    expect(queue.stats('webhook-delivery')).toMatchObject({ visible: 0, invisible: 1 });
    queue.tick(4_999);
    await queue.runUntilIdle();
    expect(events).toHaveLength(0);
    queue.tick(1);
    await queue.runUntilIdle();
    expect(events.flatMap(idsOf)).toEqual([later.id]);
    await expect(queue.send([later], { delaySeconds: 901 })).rejects.toBeInstanceOf(DependencyError);
    await expect(queue.send([later], { delaySeconds: -1 })).rejects.toBeInstanceOf(DependencyError);
  });

  it('fails the whole batch when the handler throws or names a record that is not in the batch', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    let mode: 'throw' | 'unknown-id' | 'ok' = 'throw';
    const counts: string[][] = [];
    queue.consume('embedding', async (event) => {
      counts.push(event.Records.map((r) => r.attributes.ApproximateReceiveCount));
      if (mode === 'throw') throw new Error('boom');
      if (mode === 'unknown-id') return { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] };
      return { batchItemFailures: [] };
    });
    await queue.send([task('a'), task('b')]);

    await queue.runUntilIdle();
    mode = 'unknown-id';
    queue.tick(30_000);
    await queue.runUntilIdle();
    mode = 'ok';
    queue.tick(30_000);
    await queue.runUntilIdle();

    expect(counts).toEqual([['1', '1'], ['2', '2'], ['3', '3']]);
    expect(queue.stats('embedding')).toMatchObject({ visible: 0, invisible: 0 });
  });

  it('waits out the retry delay it is given instead of the visibility timeout', async () => {
    const queue = createLocalQueue({ clock: frozenClock, visibilityTimeoutMs: 30_000, retryDelayMs: (n) => 1_000 * 2 ** n });
    const { events, handler } = recordingHandler(new Set(['flaky']));
    queue.consume('embedding', handler);
    await queue.send([task('flaky')]);
    await queue.runUntilIdle();

    queue.tick(1_999);
    await queue.runUntilIdle();
    expect(events).toHaveLength(1);
    queue.tick(1);
    await queue.runUntilIdle();
    expect(events).toHaveLength(2);
  });

  it('hands at most batchSize records to one invocation and runs at most `concurrency` batches at once', async () => {
    const queue = createLocalQueue({ clock: frozenClock, batchSize: 3, concurrency: 2 });
    let active = 0;
    let maxActive = 0;
    const sizes: number[] = [];
    const gates: Array<() => void> = [];
    queue.consume('embedding', async (event) => {
      sizes.push(event.Records.length);
      active += 1;
      maxActive = Math.max(maxActive, active);
      await new Promise<void>((resolve) => gates.push(resolve));
      active -= 1;
    });
    await queue.send(Array.from({ length: 10 }, () => task('embed')));
    const idle = queue.runUntilIdle();
    // Release batches one by one as they arrive, so the bound is tested while work is waiting.
    while (sizes.length < 4 || gates.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      gates.shift()?.();
    }
    await idle;

    expect(sizes).toEqual([3, 3, 3, 1]);
    expect(maxActive).toBe(2);
  });

  it('delivers with real timers after start() without being driven', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const received = deferred();
    const ids: string[] = [];
    queue.consume('retention', async (event) => {
      ids.push(...idsOf(event));
      received.resolve();
    });
    queue.start();
    const t = task('sweep', {}, 'retention');
    await queue.send([t]);
    await received.promise;
    await queue.drain(60_000);
    expect(ids).toEqual([t.id]);
  });

  it('redelivers a failed message on its own once the visibility timeout passes in real time', async () => {
    const queue = createLocalQueue({ visibilityTimeoutMs: 5 });
    const redelivered = deferred();
    const counts: string[] = [];
    queue.consume('embedding', async (event) => {
      counts.push(event.Records[0].attributes.ApproximateReceiveCount);
      if (counts.length === 1) throw new Error('first attempt fails');
      redelivered.resolve();
    });
    queue.start();
    await queue.send([task('embed')]);
    await redelivered.promise;
    expect(await queue.drain(60_000)).toBe(true);
    expect(counts).toEqual(['1', '2']);
    expect(queue.stats('embedding')).toMatchObject({ visible: 0, invisible: 0 });
  });

  it('drains: stops receiving and waits for the batch in flight', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const gate = deferred();
    const started = deferred();
    const ids: string[] = [];
    queue.consume('embedding', async (event) => {
      started.resolve();
      await gate.promise;
      ids.push(...idsOf(event));
    });
    queue.start();
    const first = task('embed');
    await queue.send([first]);
    await started.promise;

    const drained = queue.drain(60_000);
    await queue.send([task('embed')]);
    gate.resolve();

    expect(await drained).toBe(true);
    await queue.runUntilIdle();
    expect(ids).toEqual([first.id]);
    expect(queue.stats('embedding')).toMatchObject({ visible: 1, inFlightBatches: 0 });
  });

  it('reports a drain that timed out while a batch was still running', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    const started = deferred();
    const never = new Promise<void>(() => {});
    queue.consume('embedding', async () => {
      started.resolve();
      await never;
    });
    queue.start();
    await queue.send([task('embed')]);
    await started.promise;
    expect(await queue.drain(5)).toBe(false);
    expect(queue.stats('embedding').inFlightBatches).toBe(1);
  });

  it('rejects a task larger than the SQS message size limit, as SQS would', async () => {
    const queue = createLocalQueue({ clock: frozenClock });
    await expect(queue.send([task('embed', { text: 'x'.repeat(300_000) })])).rejects.toBeInstanceOf(DependencyError);
    expect(queue.stats('embedding').visible).toBe(0);
  });
});
