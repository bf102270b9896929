import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqsQueue } from '#shared/adapters/sqs/sqs-queue.ts';
import { TASK_FAMILIES, type TaskFamily } from '#shared/ports/queue.ts';
import { makeTask } from '../contract/queue-producer.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/memorysync.js');
// Each CLI run boots the app in a fresh process (tens of seconds on a loaded machine): few runs, long timeouts.
const SLOW = 600_000;

async function cli(env: Record<string, string>, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() };
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...base, ...env }, cwd: resolve(import.meta.dirname, '../..'), timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('memorysync dlq (child process)', () => {
  let fauxqs: Awaited<ReturnType<typeof startFauxqs>>;
  let client: SQSClient;
  const root = mkdtempSync(join(tmpdir(), 'memorysync-dlq-'));

  beforeAll(async () => {
    fauxqs = await startFauxqs({ port: 0, logger: false });
    client = new SQSClient({ endpoint: fauxqs.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  });
  afterAll(async () => {
    client?.destroy();
    await fauxqs?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('lists and re-drives the SQS dead-letter queues directly (QUEUE=sqs, SQS_DLQ_URLS)', { timeout: SLOW }, async () => {
    const run = randomBytes(4).toString('hex');
    const queueUrls = {} as Record<TaskFamily, string>;
    const dlqUrls = {} as Record<TaskFamily, string>;
    for (const family of TASK_FAMILIES) {
      const dlq = fauxqs.createQueue(`cli-${run}-${family}-dlq`);
      dlqUrls[family] = dlq.queueUrl;
      queueUrls[family] = fauxqs.createQueue(`cli-${run}-${family}`, { attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: '1' }) } }).queueUrl;
    }
    const tasks = Array.from({ length: 3 }, () => makeTask('integration-sync'));
    await createSqsQueue({ client, queueUrls }).send(tasks);
    // received once and never deleted: the next receive parks them in the DLQ
    for (let i = 0; i < 5; i++) await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrls['integration-sync'], MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));

    const env = {
      MEMORYSYNC_DATA_DIR: join(root, 'sqs'), QUEUE: 'sqs', SQS_ENDPOINT: fauxqs.address, AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', SQS_QUEUE_URLS: JSON.stringify(queueUrls), SQS_DLQ_URLS: JSON.stringify(dlqUrls),
    };
    const list = await cli(env, ['dlq', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const counts = JSON.parse(list.stdout);
    expect(counts).toMatchObject({ queue: 'sqs', total: 3 });
    expect(counts.families.find((f: any) => f.family === 'integration-sync').messages).toBe(3);

    const redrive = await cli(env, ['dlq', 'redrive', 'integration-sync', '--limit', '2', '--json']);
    expect(redrive.code, redrive.stderr).toBe(0);
    expect(JSON.parse(redrive.stdout)).toEqual({ status: 'redriven', redriven: 2, results: [{ family: 'integration-sync', moved: 2, remaining: 1 }] });
    const rest = await cli(env, ['dlq', 'redrive', 'integration-sync']);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/Re-drove 1 dead letters of integration-sync; 0 remain/);
    const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrls['integration-sync'], MaxNumberOfMessages: 10, VisibilityTimeout: 30 }));
    expect(Messages.map((m) => JSON.parse(m.Body!).id).sort()).toEqual(tasks.map((t) => t.id).sort());

    const badLimit = await cli(env, ['dlq', 'redrive', 'embedding', '--limit', '0', '--json']);
    expect(badLimit.code).toBe(1);
    expect(JSON.parse(badLimit.stderr).error).toMatch(/--limit/);
  });

  it("with QUEUE=local it points at --api, and --api calls a running server's admin routes", { timeout: SLOW }, async () => {
    const local = await cli({ MEMORYSYNC_DATA_DIR: join(root, 'local') }, ['dlq', 'list']);
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/--api/);
    const noToken = await cli({}, ['dlq', 'redrive', 'retention', '--api', 'http://127.0.0.1:9']);
    expect(noToken.stderr).toMatch(/MEMORYSYNC_ADMIN_TOKEN/);

    const email = `ops-${randomBytes(4).toString('hex')}@platform.test`;
    const server: TestServer = await startTestServer({ PLATFORM_ADMIN_EMAILS: email });
    try {
      const signup = await server.call('POST', '/auth/signup', { body: { email, password: 'operator password', organization_name: 'Platform' } });
      const token = signup.body.tokens.access_token as string;
      await server.queue!.runUntilIdle();
      const list = await cli({ MEMORYSYNC_ADMIN_TOKEN: token }, ['dlq', 'list', '--api', server.url, '--json']);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toMatchObject({ queue: 'local', total: 0 });
      const redrive = await cli({ MEMORYSYNC_ADMIN_TOKEN: token }, ['dlq', 'redrive', 'retention', '--api', server.url]);
      expect(redrive.stdout).toMatch(/Re-drove 0 dead letters of retention; 0 remain/);
      const forbidden = await cli({ MEMORYSYNC_ADMIN_TOKEN: 'not-a-token' }, ['dlq', 'list', '--api', server.url]);
      expect(forbidden.code).toBe(1);
      expect(forbidden.stderr).toMatch(/answered 401/);
    } finally {
      await server.stop();
    }
  });
});
