import { randomBytes } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  type Message,
  type SendMessageBatchCommandInput,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqsQueue } from '#shared/adapters/sqs/sqs-queue.ts';
import { InvalidTaskMessageError, sqsRecordToTask } from '#shared/adapters/sqs/sqs-record.ts';
import { DependencyError } from '#shared/errors.ts';
import { TASK_FAMILIES, type Task, type TaskFamily } from '#shared/ports/queue.ts';
import { makeTask, queueProducerContract } from '../contract/queue-producer.ts';

let server: Awaited<ReturnType<typeof startFauxqs>>;
let client: SQSClient;

beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false });
  client = newClient();
});
afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

function newClient() {
  return new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

/** One fresh queue per family, named uniquely so test files and tests never share queues. */
function freshQueueUrls(): Record<TaskFamily, string> {
  const run = randomBytes(4).toString('hex');
  return Object.fromEntries(TASK_FAMILIES.map((f) => [f, server.createQueue(`ms-${run}-${f}`).queueUrl])) as Record<TaskFamily, string>;
}

/** Shapes a received SQS message like the record Lambda's SQS event source delivers. */
function toRecord(message: Message, queueUrl: string): SQSRecord {
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body!,
    attributes: {} as SQSRecord['attributes'],
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType as 'String' }]),
    ),
    md5OfBody: message.MD5OfBody!,
    eventSource: 'aws:sqs',
    eventSourceARN: queueUrl,
    awsRegion: 'us-east-1',
  };
}

async function drain(queueUrl: string): Promise<SQSRecord[]> {
  const records: SQSRecord[] = [];
  for (;;) {
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
    );
    if (Messages.length === 0) return records;
    records.push(...Messages.map((m) => toRecord(m, queueUrl)));
    await client.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
  }
}

async function receiveAll(queueUrls: Record<TaskFamily, string>): Promise<Task[]> {
  const perFamily = await Promise.all(TASK_FAMILIES.map(async (family) => {
    const records = await drain(queueUrls[family]);
    const tasks = records.map(sqsRecordToTask);
    // each task arrived on its own family's queue
    for (const task of tasks) expect(task.family).toBe(family);
    return tasks;
  }));
  return perFamily.flat();
}

queueProducerContract('sqs on fauxqs', async () => {
  const queueUrls = freshQueueUrls();
  return { queue: createSqsQueue({ client, queueUrls }), receiveAll: () => receiveAll(queueUrls) };
});

/** Counts SendMessageBatch calls and their entry counts, on the real wire to fauxqs. */
function countingClient() {
  const calls: number[] = [];
  const counted = newClient();
  counted.middlewareStack.add((next) => async (args) => {
    const input = args.input as { Entries?: unknown[] };
    if (input.Entries) calls.push(input.Entries.length);
    return next(args);
  }, { step: 'initialize', name: 'countBatches' });
  return { client: counted, calls };
}

describe('sqs queue', () => {
  it('sends 25 tasks of one family in batches of at most 10', async () => {
    const queueUrls = freshQueueUrls();
    const { client: counted, calls } = countingClient();
    const tasks = Array.from({ length: 25 }, (_, i) => makeTask('embedding', { payload: { i } }));
    await createSqsQueue({ client: counted, queueUrls }).send(tasks);
    expect(calls).toEqual([10, 10, 5]);
    expect((await receiveAll(queueUrls)).length).toBe(25);
    counted.destroy();
  });

  it('splits a batch when ten messages would exceed the byte limit', async () => {
    const queueUrls = freshQueueUrls();
    const { client: counted, calls } = countingClient();
    // 4 tasks of ~100 KB: at most two fit in 256 KiB
    const tasks = Array.from({ length: 4 }, (_, i) => makeTask('intelligence', { payload: { blob: 'x'.repeat(100_000), i } }));
    await createSqsQueue({ client: counted, queueUrls }).send(tasks);
    expect(calls).toEqual([2, 2]);
    expect((await receiveAll(queueUrls)).map((t) => t.payload.i).sort()).toEqual([0, 1, 2, 3]);
    counted.destroy();
  });

  it('refuses a task larger than one SQS message, before sending any of the batch', async () => {
    const queueUrls = freshQueueUrls();
    const queue = createSqsQueue({ client, queueUrls });
    const small = makeTask('embedding');
    const huge = makeTask('embedding', { payload: { blob: 'x'.repeat(300_000) } });
    await expect(queue.send([small, huge])).rejects.toThrow(/bytes; SQS accepts at most/);
    expect(await receiveAll(queueUrls)).toEqual([]);
  });

  it('puts family, type, tenant and task id in message attributes', async () => {
    const queueUrls = freshQueueUrls();
    const task = makeTask('siem-forwarding', { tenantId: 'tenant-9', type: 'siem.forward' });
    await createSqsQueue({ client, queueUrls }).send([task, makeTask('siem-forwarding', { tenantId: null })]);
    const records = await drain(queueUrls['siem-forwarding']);
    const attrs = records.map((r) => Object.fromEntries(Object.entries(r.messageAttributes).map(([k, v]) => [k, v.stringValue])));
    expect(attrs).toContainEqual({ family: 'siem-forwarding', type: 'siem.forward', tenantId: 'tenant-9', taskId: task.id });
    // SQS forbids empty attribute values: a tenant-less task has no tenantId attribute
    expect(attrs.find((a) => a.taskId !== task.id)).not.toHaveProperty('tenantId');
  });

  it('retries only the entries SQS reported as failed, then succeeds', async () => {
    const queueUrls = freshQueueUrls();
    const flaky = newClient();
    const sentIds: string[][] = [];
    let failNext = true;
    // Drop two entries from the first call before it reaches fauxqs and report them as failed,
    // as SQS does for an internal error on part of a batch.
    flaky.middlewareStack.add((next) => async (args) => {
      const input = args.input as SendMessageBatchCommandInput;
      const entries = input.Entries as { Id: string; MessageBody: string }[];
      sentIds.push(entries.map((e) => (JSON.parse(e.MessageBody) as Task).id));
      if (!failNext) return next(args);
      failNext = false;
      const dropped = entries.slice(0, 2);
      const result = await next({ ...args, input: { ...input, Entries: entries.slice(2) } });
      const output = result.output as { Failed?: unknown[] };
      output.Failed = dropped.map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false }));
      return result;
    }, { step: 'initialize', name: 'partialFailure' });

    const tasks = Array.from({ length: 5 }, (_, i) => makeTask('embedding', { payload: { i } }));
    await createSqsQueue({ client: flaky, queueUrls, sleep: async () => {} }).send(tasks);
    expect(sentIds).toEqual([tasks.map((t) => t.id), [tasks[0]!.id, tasks[1]!.id]]);
    const received = await receiveAll(queueUrls);
    expect(received.map((t) => t.id).sort()).toEqual(tasks.map((t) => t.id).sort());
    flaky.destroy();
  });

  /** A client on which SQS reports every entry of every batch as failed with `code`. */
  function rejectingClient(code: string, senderFault: boolean) {
    const rejecting = newClient();
    const calls = { count: 0 };
    rejecting.middlewareStack.add(() => async (args) => {
      calls.count++;
      const input = args.input as { Entries: { Id: string }[] };
      const Failed = input.Entries.map((e) => ({ Id: e.Id, Code: code, SenderFault: senderFault }));
      return { output: { $metadata: {}, Successful: [], Failed }, response: {} };
    }, { step: 'initialize', name: 'rejectAll' });
    return { client: rejecting, calls };
  }

  it('gives up with a DependencyError naming the tasks that kept failing', async () => {
    const { client: failing, calls } = rejectingClient('InternalError', false);
    const task = makeTask('embedding');
    const error = await createSqsQueue({ client: failing, queueUrls: freshQueueUrls(), maxAttempts: 3, sleep: async () => {} })
      .send([task]).catch((e) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error.dependency).toBe('queue');
    expect(error.message).toContain(task.id);
    expect(calls.count).toBe(3);
    failing.destroy();
  });

  it('does not retry an entry rejected for a sender fault', async () => {
    const { client: failing, calls } = rejectingClient('InvalidMessageContents', true);
    await expect(createSqsQueue({ client: failing, queueUrls: freshQueueUrls(), sleep: async () => {} }).send([makeTask('embedding')]))
      .rejects.toThrow(/InvalidMessageContents/);
    expect(calls.count).toBe(1);
    failing.destroy();
  });

  it('fails with a DependencyError when the queue does not exist', async () => {
    const queueUrls = { ...freshQueueUrls(), embedding: `${server.address}/000000000000/missing-${randomBytes(4).toString('hex')}` };
    await expect(createSqsQueue({ client, queueUrls }).send([makeTask('embedding')])).rejects.toBeInstanceOf(DependencyError);
  });

  it('fails when a family has no queue configured', async () => {
    await expect(createSqsQueue({ client, queueUrls: {} }).send([makeTask('retention')])).rejects.toThrow(/no SQS queue configured/);
  });
});

describe('sqsRecordToTask', () => {
  async function recordWithBody(body: string, attributes: Record<string, string> = {}): Promise<SQSRecord> {
    const queueUrl = server.createQueue(`ms-raw-${randomBytes(4).toString('hex')}`).queueUrl;
    await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{
      Id: '0', MessageBody: body,
      MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }])),
    }] }));
    const [record] = await drain(queueUrl);
    return record!;
  }

  it('rejects a body that is not JSON', async () => {
    await expect(async () => sqsRecordToTask(await recordWithBody('not json'))).rejects.toBeInstanceOf(InvalidTaskMessageError);
  });

  it('rejects a task with an unknown family or missing fields, naming the fields', async () => {
    const bad = { ...makeTask('embedding'), family: 'mining' } as unknown as Task;
    await expect(async () => sqsRecordToTask(await recordWithBody(JSON.stringify(bad)))).rejects.toThrow(/family/);
    const { id: _id, ...noId } = makeTask('embedding');
    await expect(async () => sqsRecordToTask(await recordWithBody(JSON.stringify(noId)))).rejects.toThrow(/\bid\b/);
  });

  it('rejects a message whose family attribute disagrees with its body', async () => {
    const task = makeTask('embedding');
    await expect(async () => sqsRecordToTask(await recordWithBody(JSON.stringify(task), { family: 'retention' })))
      .rejects.toThrow(/does not match/);
  });
});
