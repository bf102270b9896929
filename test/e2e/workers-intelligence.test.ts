import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { precomputedClusters, precomputedDecisions } from '#shared/tasks/intelligence.ts';
import { enqueueOnce } from '#shared/tasks/scheduled-work.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, MovableClock, seedMemories } from '../support/worker-fixtures.ts';

/**
 * The intelligence family end to end on the local runtime, with time moved by an injected clock:
 * importance decay, tier moves by last access, the retention transitions of API.md 4.1, vector
 * metadata kept in step, and the precomputed clusters and decisions.
 */
describe('intelligence re-evaluation', () => {
  const clock = new MovableClock();
  let server: TestServer;
  let a: { apiKey: string; tenantId: string };
  let b: { apiKey: string; tenantId: string };
  let userA: number;
  let ids: { decision: number; flight1: number; flight2: number; garden: number; bread: number };

  const rowsOf = (tenantId: string) => server.app.db.kysely.selectFrom('memories').select(['id', 'tier', 'retention_status', 'importance', 'archive_at', 'retention_expires_at', 'hard_delete_at']).where('tenant_id', '=', tenantId).orderBy('id').execute();
  const row = async (id: number) => (await rowsOf(a.tenantId)).find((r) => Number(r.id) === id)!;
  const eventsOf = (type: string) => server.app.db.kysely.selectFrom('memory_events').select(['memory_id', 'data']).where('tenant_id', '=', a.tenantId).where('event_type', '=', type).orderBy('id').execute();
  const indexed = async (filter: { tiers?: Array<'hot' | 'warm' | 'cold'>; retentionStatus?: Array<'active' | 'archived' | 'soft_deleted'> }) =>
    (await server.app.vectors.query(namespaceForUser(userA), (await server.app.embedder.embed(['flight garden bread decision']))[0], { k: 50, filter })).map((h) => h.memoryId).sort((x, y) => x - y);
  const daily = async () => {
    expect((await server.scheduler.runJob('intelligence')).status).toBe('ran');
    await server.queue!.runUntilIdle();
  };

  beforeAll(async () => {
    server = await startTestServer({}, { clock });
    a = await server.newTenant('intelligence A');
    b = await server.newTenant('intelligence B');
    const [decision, flight1, flight2, garden, bread] = await seedMemories(server, a.apiKey, 'u', [
      { text: 'We decided to go with PostgreSQL for the billing service.', importance: 0.8 },
      { text: 'My flight to Lisbon leaves at 9am on Friday from terminal 2.', importance: 0.6 },
      { text: 'My flight to Lisbon leaves at 9am on Friday from terminal 2!', importance: 0.5 },
      { text: 'The tomatoes in the garden need watering every second evening.', importance: 0.4 },
      { text: 'Opted for rye flour in the sourdough starter this week.', importance: 0.4 },
    ]);
    ids = { decision, flight1, flight2, garden, bread };
    await seedMemories(server, b.apiKey, 'u', ['Bravo tenant memory one about sailing.', 'Bravo tenant memory two about chess.']);
    userA = await endUserId(server, a.tenantId, 'u');
  });
  afterAll(async () => {
    await server.stop();
  });

  it('precomputes near-duplicate clusters and detected decisions for the read routes', async () => {
    await daily();
    const clusters = await precomputedClusters(server.app.db.kysely, { tenantId: a.tenantId, userId: userA });
    const flights = clusters.find((c) => c.members.some((m) => m.memory_id === ids.flight1));
    expect(flights?.seed_id).toBe(ids.flight1);
    expect(flights?.members.map((m) => m.memory_id).sort()).toEqual([ids.flight1, ids.flight2].sort());
    expect(flights?.members.find((m) => m.memory_id === ids.flight2)).toMatchObject({ near_duplicate: true });
    expect(clusters.flatMap((c) => c.members.map((m) => m.memory_id))).not.toContain(ids.garden);
    const decisions = await precomputedDecisions(server.app.db.kysely, { tenantId: a.tenantId, userId: userA });
    expect(decisions.map((d) => d.memory_id).sort()).toEqual([ids.decision, ids.bread].sort());
    expect(decisions.find((d) => d.memory_id === ids.decision)?.signal).toBe('memory_type');
    expect(decisions.find((d) => d.memory_id === ids.bread)).toMatchObject({ signal: 'cue', confidence: 0.6 });
    // nothing moved on day 0
    expect((await rowsOf(a.tenantId)).every((r) => r.tier === 'hot' && r.retention_status === 'active')).toBe(true);
  });

  it('a tenant task re-evaluates only that tenant', async () => {
    clock.advanceDays(31);
    const before = await rowsOf(b.tenantId);
    await enqueueOnce(server.app, [{ id: `test-a-only-${clock.now().toISOString()}`, family: 'intelligence', type: 'reevaluate', tenantId: a.tenantId, payload: { tenantId: a.tenantId }, createdAt: clock.now().toISOString() }]);
    await server.queue!.runUntilIdle();
    expect((await rowsOf(a.tenantId)).every((r) => r.tier === 'warm')).toBe(true);
    expect(await rowsOf(b.tenantId)).toEqual(before);
  });

  it('after 30 days unaccessed memories are warm with decayed importance, in the rows, the events and the index', async () => {
    await daily();
    const rows = await rowsOf(a.tenantId);
    expect(rows.map((r) => r.tier)).toEqual(['warm', 'warm', 'warm', 'warm', 'warm']);
    // one day past the 30 unaccessed days at a 90-day half-life: × 0.5^(1/90)
    expect((await row(ids.decision)).importance).toBeCloseTo(0.8 * 0.5 ** (1 / 90), 4);
    const tierEvents = await eventsOf('tier_changed');
    expect(tierEvents).toHaveLength(5);
    expect(tierEvents[0].data).toMatchObject({ from: 'hot', to: 'warm' });
    expect(await indexed({ tiers: ['warm'] })).toEqual(Object.values(ids).sort((x, y) => x - y));
    expect(await indexed({ tiers: ['hot'] })).toEqual([]);
    // the same day again decays nothing further
    const importance = (await row(ids.decision)).importance;
    await enqueueOnce(server.app, [{ id: 'test-same-instant', family: 'intelligence', type: 'reevaluate', tenantId: a.tenantId, payload: {}, createdAt: clock.now().toISOString() }]);
    await server.queue!.runUntilIdle();
    expect((await row(ids.decision)).importance).toBe(importance);
  });

  it('a query access brings a memory back to hot; the others go on to archived after 90 days and soft_deleted 60 days later', async () => {
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(a.apiKey, 'u'), body: { query: 'tomatoes garden watering', k: 1 } });
    expect(q.body.memories.map((m: { id: number }) => m.id)).toEqual([ids.garden]);
    clock.advanceDays(1);
    await daily();
    expect((await row(ids.garden)).tier).toBe('hot');
    expect(await indexed({ tiers: ['hot'] })).toEqual([ids.garden]);

    clock.advanceDays(59); // 91 days since the others were last accessed; 60 for the garden memory
    await daily();
    for (const id of [ids.decision, ids.flight1, ids.flight2, ids.bread]) {
      expect(await row(id)).toMatchObject({ retention_status: 'archived', archive_at: clock.now(), retention_expires_at: new Date(clock.now().getTime() + 60 * 86_400_000) });
    }
    expect(await row(ids.garden)).toMatchObject({ retention_status: 'active', tier: 'warm' });
    expect((await eventsOf('archived')).map((e) => Number(e.memory_id)).sort()).toEqual([ids.decision, ids.flight1, ids.flight2, ids.bread].sort());
    expect(await indexed({ retentionStatus: ['active'] })).toEqual([ids.garden]);
    const search = await server.call('POST', '/memory/query', { headers: keyHeaders(a.apiKey, 'u'), body: { query: 'flight to Lisbon', k: 5 } });
    expect(search.body.memories.map((m: { id: number }) => m.id)).not.toContain(ids.flight1);

    clock.advanceDays(60);
    await daily();
    for (const id of [ids.decision, ids.flight1, ids.flight2, ids.bread]) {
      expect(await row(id)).toMatchObject({ retention_status: 'soft_deleted', tier: 'warm', hard_delete_at: new Date(clock.now().getTime() + 7 * 86_400_000) });
    }
    expect(await indexed({ retentionStatus: ['soft_deleted'] })).toEqual([ids.decision, ids.flight1, ids.flight2, ids.bread].sort((x, y) => x - y));
    // the Lisbon search above returned the garden memory (the only active one) and so touched it again
    expect(await row(ids.garden)).toMatchObject({ retention_status: 'active', tier: 'warm' });
    // the precomputed views follow: archived and soft-deleted memories leave them
    expect(await precomputedClusters(server.app.db.kysely, { tenantId: a.tenantId, userId: userA })).toEqual([]);
    expect(await precomputedDecisions(server.app.db.kysely, { tenantId: a.tenantId, userId: userA })).toEqual([]);
  });
});
