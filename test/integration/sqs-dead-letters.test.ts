import { randomBytes } from 'node:crypto';
import { ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqsQueue } from '#shared/adapters/sqs/sqs-queue.ts';
import { DependencyError } from '#shared/errors.ts';
import { TASK_FAMILIES, type TaskFamily } from '#shared/ports/queue.ts';
import { makeTask } from '../contract/queue-producer.ts';

/** The SQS adapter's dead-letter tooling over the wire, on fauxqs queues with a real redrive policy. */
let server: Awaited<ReturnType<typeof startFauxqs>>;
let client: SQSClient;
const MAX_RECEIVES = 2;

beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false });
  client = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});
afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

/** A queue and a DLQ per family, the queue's redrive policy pointing at the DLQ (as infra/constructs/queues.ts does). */
function freshQueues() {
  const run = randomBytes(4).toString('hex');
  const queueUrls = {} as Record<TaskFamily, string>;
  const dlqUrls = {} as Record<TaskFamily, string>;
  for (const family of TASK_FAMILIES) {
    const dlq = server.createQueue(`ms-${run}-${family}-dlq`);
    dlqUrls[family] = dlq.queueUrl;
    queueUrls[family] = server.createQueue(`ms-${run}-${family}`, {
      attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: String(MAX_RECEIVES) }) },
    }).queueUrl;
  }
  return { queueUrls, dlqUrls, queue: createSqsQueue({ client, queueUrls, deadLetterQueueUrls: dlqUrls, redriveVisibilitySeconds: 30 }) };
}

async function receive(queueUrl: string, visibilityTimeout: number): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const { Messages = [] } = await client.send(new ReceiveMessageCommand({
      QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: visibilityTimeout,
      MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }));
    if (Messages.length === 0) return out;
    out.push(...Messages);
    if (visibilityTimeout === 0) return out;
  }
}

/** Receives everything without deleting it until SQS parks it in the DLQ (the worker failed it every time). */
async function poison(queueUrl: string): Promise<void> {
  for (let i = 0; i < 100; i++) if ((await receive(queueUrl, 0)).length === 0) return;
  throw new Error('messages never reached the DLQ');
}

describe('SQS dead-letter queues (fauxqs)', () => {
  it('counts dead letters per family and moves them back intact, as new messages with a fresh receive count', async () => {
    const { queueUrls, dlqUrls, queue } = freshQueues();
    const tasks = Array.from({ length: 3 }, (_, i) => makeTask('webhook-delivery', { type: 'deliver', payload: { deliveryId: `whd_${i}`, attempt: 1 } }));
    const healthy = makeTask('embedding');
    await queue.send([...tasks, healthy]);
    await poison(queueUrls['webhook-delivery']);

    expect(await receive(queueUrls['webhook-delivery'], 0)).toEqual([]);
    const counts = await queue.dlq!.counts();
    expect(counts.map((c) => c.family)).toEqual([...TASK_FAMILIES]);
    expect(counts.find((c) => c.family === 'webhook-delivery')?.messages).toBe(3);
    expect(counts.filter((c) => c.family !== 'webhook-delivery').every((c) => c.messages === 0)).toBe(true);

    const outcome = await queue.dlq!.redrive('webhook-delivery');
    expect(outcome).toEqual({ family: 'webhook-delivery', moved: 3, remaining: 0 });
    expect(await receive(dlqUrls['webhook-delivery'], 30)).toEqual([]);

    const back = await receive(queueUrls['webhook-delivery'], 30);
    expect(back.map((m) => JSON.parse(m.Body!)).sort((a, b) => a.id.localeCompare(b.id))).toEqual([...tasks].sort((a, b) => a.id.localeCompare(b.id)));
    for (const m of back) {
      expect(m.Attributes?.ApproximateReceiveCount).toBe('1');
      expect(m.MessageAttributes?.family?.StringValue).toBe('webhook-delivery');
      expect(m.MessageAttributes?.taskId?.StringValue).toBe(JSON.parse(m.Body!).id);
    }
    // the healthy family's message was never touched
    const embedding = await receive(queueUrls.embedding, 30);
    expect(embedding.map((m) => JSON.parse(m.Body!).id)).toEqual([healthy.id]);
  });

  it('moves at most `limit` per call and reports what remains', async () => {
    const { queueUrls, dlqUrls, queue } = freshQueues();
    await queue.send(Array.from({ length: 25 }, (_, i) => makeTask('retention', { payload: { i } })));
    await poison(queueUrls.retention);
    expect((await queue.dlq!.counts()).find((c) => c.family === 'retention')?.messages).toBe(25);

    const first = await queue.dlq!.redrive('retention', { limit: 12 });
    expect(first).toEqual({ family: 'retention', moved: 12, remaining: 13 });
    expect(await receive(queueUrls.retention, 30)).toHaveLength(12);
    const rest = await queue.dlq!.redrive('retention', { limit: 100 });
    expect(rest).toEqual({ family: 'retention', moved: 13, remaining: 0 });
    const again = await receive(queueUrls.retention, 30);
    expect(again).toHaveLength(13);
    expect(await receive(dlqUrls.retention, 30)).toEqual([]);
  });

  it('redrives an empty DLQ as a no-op and answers a dependency error when the DLQ is unreachable', async () => {
    const { queue, queueUrls } = freshQueues();
    expect(await queue.dlq!.redrive('summarization')).toEqual({ family: 'summarization', moved: 0, remaining: 0 });
    const broken = createSqsQueue({ client, queueUrls, deadLetterQueueUrls: { ...queueUrls, intelligence: `${server.address}/000000000000/missing-${randomBytes(3).toString('hex')}` } });
    await expect(broken.dlq!.redrive('intelligence')).rejects.toBeInstanceOf(DependencyError);
    await expect(broken.dlq!.counts()).rejects.toBeInstanceOf(DependencyError);
    // without DLQ URLs the adapter offers no dead-letter tooling at all
    expect(createSqsQueue({ client, queueUrls }).dlq).toBeUndefined();
  });

  it('delays a send by DelaySeconds (deferred webhook attempts) and refuses a delay SQS cannot take', async () => {
    const { queueUrls, queue } = freshQueues();
    const task = makeTask('webhook-delivery', { type: 'deliver' });
    await queue.send([task], { delaySeconds: 2 });
    expect(await receive(queueUrls['webhook-delivery'], 30)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const later = await receive(queueUrls['webhook-delivery'], 30);
    expect(later.map((m) => JSON.parse(m.Body!))).toEqual([task]);
    await expect(queue.send([task], { delaySeconds: 901 })).rejects.toBeInstanceOf(DependencyError);
    await expect(queue.send([task], { delaySeconds: 1.5 })).rejects.toBeInstanceOf(DependencyError);
  });
});
