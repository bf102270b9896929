import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEvent, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { sqsRecordToTask } from '#shared/adapters/sqs/sqs-record.ts';
import type { App } from '#shared/app.ts';
import { scheduledJobs } from '#shared/jobs.ts';
import { addMemoryBody, queryMemoryBody } from '#shared/http/schemas/memory.ts';
import { header } from '#shared/http/types.ts';
import { apiEvent } from '../../support/events.ts';

const read = <T>(path: string): T => JSON.parse(readFileSync(new URL(`../../../events/${path}`, import.meta.url), 'utf8')) as T;

const keysOf = (value: object) => Object.keys(value).sort();

describe('sample events in events/', () => {
  const health = read<APIGatewayProxyEvent>('api/health.json');
  const add = read<APIGatewayProxyEvent>('api/memory-add.json');
  const query = read<APIGatewayProxyEvent>('api/memory-query.json');

  it('are REST v1 proxy events with the same fields the test factory builds', () => {
    const built = apiEvent({ method: 'POST', path: '/memory/add', body: {} });
    for (const event of [health, add, query]) {
      expect(keysOf(event)).toEqual(keysOf(built));
      expect(keysOf(event.requestContext)).toEqual(keysOf(built.requestContext));
      expect(keysOf(event.requestContext.identity)).toEqual(keysOf(built.requestContext.identity));
      expect(event.requestContext.path).toBe(`/prod${event.path}`);
      expect(event.multiValueHeaders).toEqual(Object.fromEntries(Object.entries(event.headers).map(([k, v]) => [k, [v]])));
    }
  });

  it('carry bodies the memory routes accept and placeholder credentials, never a real key', () => {
    expect(health).toMatchObject({ httpMethod: 'GET', path: '/health', body: null });
    expect(add).toMatchObject({ httpMethod: 'POST', path: '/memory/add' });
    expect(query).toMatchObject({ httpMethod: 'POST', path: '/memory/query' });
    expect(addMemoryBody.safeParse(JSON.parse(add.body!)).success).toBe(true);
    expect(queryMemoryBody.safeParse(JSON.parse(query.body!)).success).toBe(true);
    for (const event of [add, query]) {
      expect(header(event, 'x-api-key')).toMatch(/^ms_live_REPLACE_/);
      expect(header(event, 'x-end-user-id')).toBeTruthy();
      expect(header(event, 'content-type')).toBe('application/json');
    }
  });

  it('include an SQS event whose one record is an embedding task', () => {
    const event = read<SQSEvent>('sqs/embedding.json');
    expect(event.Records).toHaveLength(1);
    const task = sqsRecordToTask(event.Records[0]);
    expect(task).toMatchObject({ family: 'embedding', type: 'embed', payload: { userId: expect.any(Number), memoryIds: [expect.any(Number)] } });
  });

  it('include a schedule event naming a registered job', () => {
    const event = read<{ job: string }>('schedule/outbox-sweep.json');
    expect(event).toEqual({ job: 'outbox-sweep' });
    // Only the job names are read; no job runs.
    expect(scheduledJobs({} as App).map((j) => j.name)).toContain(event.job);
  });
});
