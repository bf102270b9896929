import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/**
 * traversal_depth on /memory/query, on constructed data: the top-k stays exactly the top-k by score;
 * related memories (stored-vector similarity, memory_links such as summary → sources) come back beside
 * it, breadth first up to the depth asked, never from another end user or tenant.
 */
describe('POST /memory/query with traversal_depth', () => {
  let server: TestServer;
  let key: string;
  let otherKey: string;
  const u = 'traverse';
  const ids: Record<string, number> = {};
  const add = async (text: string, user = u, k = key) => {
    const res = await server.call('POST', '/memory/add', { headers: keyHeaders(k, user), body: { text } });
    expect(res.status).toBe(201);
    return res.body.id as number;
  };
  const query = (body: Record<string, unknown>, user = u, k = key) => server.call('POST', '/memory/query', { headers: keyHeaders(k, user), body: { query: 'Falcon launch March security review', k: 1, ...body } });

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key } = await server.newTenant('traversal'));
    ({ apiKey: otherKey } = await server.newTenant('traversal other'));
    ids.launch = await add('The Falcon launch moves to March after the security review.');
    ids.paraphrase = await add('The Falcon launch moves to March, after the security review is done.');
    ids.catering = await add('Finance approved the catering budget for the offsite in Porto.');
    ids.tomatoes = await add('The tomatoes in the garden need watering every second evening.');
    const summary = await server.call('POST', '/memory/summarize', { headers: keyHeaders(key, u), body: { memory_ids: [ids.launch, ids.catering] } });
    expect(summary.status).toBe(200);
    ids.summary = summary.body.summary_memory_id;
    // the same words for someone else, and in another tenant: never related
    await add('The Falcon launch moves to March after the security review.', 'someone-else');
    await add('The Falcon launch moves to March after the security review.', u, otherKey);
  });
  afterAll(() => server.stop());

  it('without traversal_depth answers exactly as before: top-k only, no related key', async () => {
    const res = await query({});
    expect(res.status).toBe(200);
    expect(res.body.memories).toHaveLength(1);
    expect(res.body).not.toHaveProperty('related');
    expect(res.body.context.split('\n')).toHaveLength(1);
  });

  it('depth 1: similar and linked memories beside the unchanged top-k, scored below what led to them', async () => {
    const plain = await query({});
    const res = await query({ traversal_depth: 1 });
    expect(res.status).toBe(200);
    expect(res.body.memories.map((m: any) => [m.id, m.score])).toEqual(plain.body.memories.map((m: any) => [m.id, m.score]));
    const top = res.body.memories[0];
    expect([ids.launch, ids.paraphrase]).toContain(top.id);
    const related = res.body.related as any[];
    const byId = new Map(related.map((r) => [r.id, r]));
    const twin = top.id === ids.launch ? ids.paraphrase : ids.launch;
    expect(byId.get(twin)).toMatchObject({ related_to: top.id, depth: 1, via: 'similar' });
    for (const r of related) {
      expect(r.depth).toBe(1);
      expect(r.score).toBeLessThanOrEqual(top.score);
    }
    expect(byId.has(ids.tomatoes)).toBe(false);
    expect(byId.has(ids.catering)).toBe(false);
    expect(res.body.context).toContain('Related:');
  });

  it('depth 2 reaches a source of a linked summary; depth is bounded 1..3', async () => {
    const res = await query({ traversal_depth: 2, k: 1 });
    const byId = new Map((res.body.related as any[]).map((r) => [r.id, r]));
    // launch → (summarizes) summary → (summarizes) catering
    expect(byId.get(ids.summary)).toMatchObject({ depth: 1, via: 'summarizes' });
    expect(byId.get(ids.catering)).toMatchObject({ depth: 2, related_to: ids.summary, via: 'summarizes' });
    expect(byId.has(ids.tomatoes)).toBe(false);
    expect(res.body.related.length).toBeLessThanOrEqual(10);
    expect((await query({ traversal_depth: 4 })).status).toBe(422);
    expect((await query({ traversal_depth: 0 })).status).toBe(422);
  });

  it("never relates another end user's or another tenant's memories", async () => {
    const res = await query({ traversal_depth: 3, k: 5 });
    const own = new Set(Object.values(ids));
    for (const r of res.body.related as any[]) expect(own.has(r.id)).toBe(true);
    const other = await query({ traversal_depth: 3 }, u, otherKey);
    expect((other.body.related as any[]).every((r) => !own.has(r.id))).toBe(true);
  });
});
