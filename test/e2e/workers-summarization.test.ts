import { BedrockRuntimeClient, type ConverseCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBedrockSummarizer } from '#shared/adapters/bedrock-summarizer/index.ts';
import { summarizeUser } from '#shared/tasks/summarization.ts';
import { enqueueOnce } from '#shared/tasks/scheduled-work.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, MovableClock, seedMemories } from '../support/worker-fixtures.ts';

/**
 * The summarization family end to end on the local runtime: the daily job queues one task per end
 * user with new memories; idle sessions and closed days get one summary memory each, flagged as a
 * summary and linked to its sources.
 */
describe('summarization worker', () => {
  const clock = new MovableClock();
  let server: TestServer;
  let t: { apiKey: string; tenantId: string };
  let other: { apiKey: string; tenantId: string };
  let userId: number;
  let session1: number[];
  let loose: number[];

  const summaries = (tenantId: string) => server.app.db.kysely.selectFrom('memories').select(['id', 'source', 'metadata', 'idempotency_key', 'user_id']).where('tenant_id', '=', tenantId).where('is_summary', '=', true).orderBy('id').execute();
  const linksFrom = async (id: number) => (await server.app.db.kysely.selectFrom('memory_links').select(['to_memory_id', 'kind']).where('from_memory_id', '=', id).orderBy('to_memory_id').execute()).map((l) => [Number(l.to_memory_id), l.kind]);
  const daily = async () => {
    await server.scheduler.runJob('intelligence');
    await server.queue!.runUntilIdle();
  };

  beforeAll(async () => {
    server = await startTestServer({}, { clock });
    t = await server.newTenant('summaries');
    other = await server.newTenant('someone else');
    session1 = await seedMemories(server, t.apiKey, 'u', [
      { text: 'Kickoff for the Atlas migration is on Monday. Priya leads the database work.', metadata: { session_id: 's1' } },
      { text: 'The Atlas migration moves billing to PostgreSQL. Priya wants a dry run first.', metadata: { session_id: 's1' } },
      { text: 'Dry run of the Atlas migration is booked for Thursday evening.', metadata: { session_id: 's1' } },
      { text: 'Lunch was a nice ramen place near the office.', metadata: { session_id: 's1' } },
    ]);
    await seedMemories(server, t.apiKey, 'u', [
      { text: 'Short session about guitar strings.', metadata: { session_id: 's2' } },
      { text: 'Bought nylon strings for the classical guitar.', metadata: { session_id: 's2' } },
    ]);
    loose = await seedMemories(server, t.apiKey, 'u', ['Ran 10 km along the river this morning.', 'The river path is closed near the bridge next week.', 'Knee felt fine after the river run.']);
    await seedMemories(server, other.apiKey, 'u', [
      { text: 'Other tenant session note one.', metadata: { session_id: 's1' } },
      { text: 'Other tenant session note two.', metadata: { session_id: 's1' } },
      { text: 'Other tenant session note three.', metadata: { session_id: 's1' } },
    ]);
    userId = await endUserId(server, t.tenantId, 'u');
  });
  afterAll(async () => {
    await server.stop();
  });

  it('waits until a session is idle, then stores one extractive summary linked to its sources', async () => {
    await enqueueOnce(server.app, [{ id: 'summarize-now', family: 'summarization', type: 'summarize-user', tenantId: t.tenantId, payload: { userId }, createdAt: clock.now().toISOString() }]);
    await server.queue!.runUntilIdle();
    expect(await summaries(t.tenantId)).toEqual([]); // the session is still active and today is open
    clock.advanceMinutes(31);
    await daily();
    const [summary] = await summaries(t.tenantId);
    expect(summary).toMatchObject({ source: 'summarizer', idempotency_key: 'summary:session:s1', metadata: { session_id: 's1', summary_of: { kind: 'session', key: 's1', count: 4 } } });
    expect(await linksFrom(Number(summary.id))).toEqual(session1.map((id) => [id, 'summarizes']));
    const got = await server.call('GET', `/memory/${summary.id}`, { headers: keyHeaders(t.apiKey, 'u') });
    expect(got.status).toBe(200);
    expect(got.body.is_summary).toBe(true);
    expect(got.body.text).toContain('Atlas migration');
    expect(got.body.text).not.toContain('ramen');
    // s2 has too few memories; the other tenant's session is summarised in that tenant only
    expect((await summaries(t.tenantId)).map((s) => s.idempotency_key)).toEqual(['summary:session:s1']);
    const others = await summaries(other.tenantId);
    expect(others.map((s) => s.idempotency_key)).toEqual(['summary:session:s1']);
    expect(others[0].user_id).not.toBe(userId);
  });

  it('summarises a closed day of memories without a session, once', async () => {
    clock.advanceDays(1);
    await daily();
    const all = await summaries(t.tenantId);
    const day = all.find((s) => s.idempotency_key?.startsWith('summary:day:'));
    expect(day?.idempotency_key).toBe('summary:day:2026-01-05');
    expect(await linksFrom(Number(day!.id))).toEqual(loose.map((id) => [id, 'summarizes']));
    clock.advanceDays(1);
    await daily();
    expect(await summaries(t.tenantId)).toHaveLength(all.length);
    // summaries are left out of recall unless asked for
    const plain = await server.call('POST', '/memory/query', { headers: keyHeaders(t.apiKey, 'u'), body: { query: 'river run', k: 10 } });
    expect(plain.body.memories.map((m: { id: number }) => m.id)).not.toContain(Number(day!.id));
    const withSummaries = await server.call('POST', '/memory/query', { headers: keyHeaders(t.apiKey, 'u'), body: { query: 'river run', k: 10, filters: { include_summaries: true } } });
    expect(withSummaries.body.memories.map((m: { id: number }) => m.id)).toContain(Number(day!.id));
  });

  it('goes through a Bedrock Converse summarizer the same way', async () => {
    const inputs: ConverseCommandInput[] = [];
    const client = new BedrockRuntimeClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    client.middlewareStack.add(() => async (args) => {
      inputs.push(args.input as ConverseCommandInput);
      return { output: { $metadata: {}, output: { message: { role: 'assistant', content: [{ text: 'Guitar session: nylon strings bought.' }] } }, stopReason: 'end_turn' }, response: {} };
    }, { step: 'initialize', name: 'stubbedConverse' });
    await seedMemories(server, t.apiKey, 'u', [{ text: 'Third note of the guitar session about tuning.', metadata: { session_id: 's2' } }]);
    clock.advanceMinutes(31);
    const result = await summarizeUser({ db: server.app.db.kysely, clock, memories: server.app.memories, summarizer: createBedrockSummarizer({ client, modelId: 'anthropic.claude-3-haiku-20240307-v1:0' }) }, { tenantId: t.tenantId, userId });
    expect(result.created).toEqual([{ kind: 'session', key: 's2', memory_id: expect.any(Number), sources: 3 }]);
    expect(inputs).toHaveLength(1);
    expect((inputs[0].messages![0].content![0] as { text: string }).text).toContain('nylon strings');
    const got = await server.call('GET', `/memory/${result.created[0].memory_id}`, { headers: keyHeaders(t.apiKey, 'u') });
    expect(got.body).toMatchObject({ text: 'Guitar session: nylon strings bought.', is_summary: true });
  });
});
