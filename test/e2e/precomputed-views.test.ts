import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, MovableClock, seedMemories } from '../support/worker-fixtures.ts';

/**
 * /memory/clusters and /memory/decisions answer from the intelligence worker's rows when its last run
 * covers exactly the memories the route would consider (and none changed since), and compute on read
 * otherwise; both paths give the same answer on the same data. /memory/graph and the on-read clusters
 * read vectors back from the vector store instead of re-embedding.
 */
describe('derived views: precomputed when fresh, computed on read otherwise', () => {
  const clock = new MovableClock();
  let server: TestServer;
  let tenant: { apiKey: string; tenantId: string };
  let ids: number[];
  const get = async (path: string, user = 'views') => {
    const res = await server.call('GET', path, { headers: keyHeaders(tenant.apiKey, user) });
    expect(res.status).toBe(200);
    return res.body;
  };
  const daily = async () => {
    expect((await server.scheduler.runJob('intelligence')).status).toBe('ran');
    await server.queue!.runUntilIdle();
  };
  const clusterSets = (body: any) => body.clusters.map((c: any) => [...c.memory_ids].sort((x: number, y: number) => x - y));

  beforeAll(async () => {
    server = await startTestServer({}, { clock });
    tenant = await server.newTenant('precomputed views');
    ids = await seedMemories(server, tenant.apiKey, 'views', [
      { text: 'My flight to Lisbon leaves at 9am on Friday from terminal 2.', importance: 0.6 },
      { text: 'The Lisbon flight on Friday boards at terminal 2 at 8:30am.', importance: 0.5 },
      { text: 'The tomatoes in the garden need watering every second evening.', importance: 0.4 },
      { text: 'We settled on rye flour for the sourdough starter.', importance: 0.4 },
      { text: 'Quarterly planning: the team agreed to move billing to Aurora.', importance: 0.7 },
    ]);
  });
  afterAll(() => server.stop());

  it('computes on read before the worker ran, from stored vectors (nothing re-embedded)', async () => {
    const clusters = await get('/memory/clusters');
    expect(clusters).toMatchObject({ source: 'computed_on_read', computed_at: null, bounds: { computed_on_read: true, memories_considered: 5 } });
    expect(clusterSets(clusters)).toContainEqual([ids[0], ids[1]].sort((x, y) => x - y));
    const graph = await get('/memory/graph');
    expect(graph.bounds).toMatchObject({ vectors_read: 5, vectors_embedded: 0 });
    const decisions = await get('/memory/decisions');
    expect(decisions).toMatchObject({ source: 'computed_on_read', total: 2 });
    expect(decisions.items.map((m: any) => m.id).sort()).toEqual([ids[3], ids[4]].sort());
  });

  it('serves the worker rows once it ran — the same clusters and decisions as computed on read', async () => {
    const onRead = await get('/memory/clusters');
    const decisionsOnRead = await get('/memory/decisions');
    await daily();
    const clusters = await get('/memory/clusters');
    expect(clusters.source).toBe('precomputed');
    expect(Date.parse(clusters.computed_at)).toBe(clock.now().getTime());
    expect(clusters.bounds.computed_on_read).toBe(false);
    expect(clusterSets(clusters)).toEqual(clusterSets(onRead));
    expect(clusters.clusters.map((c: any) => c.label)).toEqual(onRead.clusters.map((c: any) => c.label));
    expect([...clusters.unclustered].sort()).toEqual([...onRead.unclustered].sort());
    const decisions = await get('/memory/decisions?limit=1');
    expect(decisions).toMatchObject({ source: 'precomputed', total: 2, limit: 1 });
    expect(decisions.items.map((m: any) => m.id)).toEqual([decisionsOnRead.items[0].id]);
  });

  it('proves the precomputed rows are what is served: a planted row shows up while the run is fresh', async () => {
    const db = server.app.db.kysely;
    const userId = await endUserId(server, tenant.tenantId, 'views');
    // The garden memory is no decision; a row the worker did not write must appear only if rows are served.
    await db.insertInto('memory_decisions').values({ tenant_id: tenant.tenantId, user_id: userId, memory_id: ids[2]!, confidence: 0.5, signal: 'cue', detected_at: clock.now() }).execute();
    expect((await get('/memory/decisions')).items.map((m: any) => m.id)).toContain(ids[2]);
    await db.deleteFrom('memory_decisions').where('memory_id', '=', ids[2]!).execute();
  });

  it('falls back to on-read when the request asks for another threshold or memory set', async () => {
    expect((await get('/memory/clusters?threshold=0.9')).source).toBe('computed_on_read');
    expect((await get('/memory/clusters?limit=3')).source).toBe('computed_on_read');
    expect((await get('/memory/clusters')).source).toBe('precomputed');
  });

  it('falls back to on-read as soon as a memory is added, edited or deleted, until the next run', async () => {
    clock.advanceDays(1);
    const added = (await seedMemories(server, tenant.apiKey, 'views', ['We decided to ship the Lisbon offsite agenda on Monday.']))[0]!;
    const decisions = await get('/memory/decisions');
    expect(decisions.source).toBe('computed_on_read');
    expect(decisions.items.map((m: any) => m.id)).toContain(added);
    expect((await get('/memory/clusters')).source).toBe('computed_on_read');
    await daily();
    expect((await get('/memory/clusters')).source).toBe('precomputed');
    expect((await get('/memory/decisions')).items.map((m: any) => m.id)).toContain(added);

    clock.advanceDays(1);
    const patched = await server.call('PATCH', `/memory/${ids[2]}`, { headers: keyHeaders(tenant.apiKey, 'views'), body: { text: 'We approved the garden budget for new tomato beds.' } });
    expect(patched.status).toBe(200);
    const afterEdit = await get('/memory/decisions');
    expect(afterEdit.source).toBe('computed_on_read');
    expect(afterEdit.items.map((m: any) => m.id)).toContain(ids[2]);
    await daily();

    const del = await server.call('DELETE', `/memory/${ids[3]}`, { headers: keyHeaders(tenant.apiKey, 'views') });
    expect(del.status).toBe(200);
    const afterDelete = await get('/memory/decisions');
    expect(afterDelete.source).toBe('computed_on_read');
    expect(afterDelete.items.map((m: any) => m.id)).not.toContain(ids[3]);
  });

  it('embeds on read only the memories whose vector is not stored', async () => {
    const userId = await endUserId(server, tenant.tenantId, 'views');
    expect(await server.app.vectors.delete(namespaceForUser(userId), [ids[0]!])).toBe(1);
    const graph = await get('/memory/graph');
    expect(graph.bounds.vectors_embedded).toBe(1);
    expect(graph.bounds.vectors_read).toBe(graph.nodes.length - 1);
  });

  it("another end user or tenant never gets this user's precomputed rows", async () => {
    const stranger = await get('/memory/decisions', 'someone-else');
    expect(stranger).toMatchObject({ total: 0, items: [] });
    const other = await server.newTenant('precomputed other');
    const res = await server.call('GET', '/memory/clusters', { headers: keyHeaders(other.apiKey, 'views') });
    expect(res.body.clusters).toEqual([]);
  });
});
