import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { createLocalEmbedder } from '#shared/adapters/local-embedder/index.ts';
import { createPgArrayStore } from '#shared/adapters/pg-array/pg-array-store.ts';
import { dropVectorTables, rebuildVectorIndex, reindex, type ReindexDeps } from '#shared/tasks/reindex.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, seedMemories, sentences } from '../support/worker-fixtures.ts';

class Interrupt extends Error {}

/** The app's memory service as reindex deps, recording the ids whose vectors were written (in order). */
function recordingDeps(server: TestServer): { deps: ReindexDeps; embedded: number[] } {
  const embedded: number[] = [];
  return {
    embedded,
    deps: {
      db: server.app.db.kysely, embedder: server.app.embedder, clock: server.app.clock,
      memories: {
        computeEmbeddings: (rows) => server.app.memories.computeEmbeddings(rows),
        writeEmbeddings: async (computed) => {
          embedded.push(...computed.rows.map((r) => Number(r.id)));
          return server.app.memories.writeEmbeddings(computed);
        },
      },
    },
  };
}

describe('reindex rebuilds vectors from the encrypted text, in resumable batches', () => {
  let server: TestServer;
  let tenantA: { apiKey: string; tenantId: string };
  let tenantB: { apiKey: string; tenantId: string };
  const users: Array<{ tenantId: string; userId: number; ids: number[] }> = [];
  let all: number[];
  const probes = ['when is the sourdough bread ready', 'marathon training plan', 'kubernetes cluster upgrade', 'tickets for the train'];
  const embedder = createLocalEmbedder();

  /** the app's memory service, recording the ids whose vectors were written, so tests can tell which batches ran */
  const recorded = (): { deps: ReindexDeps; embedded: number[] } => recordingDeps(server);

  /** exact-search scores of the probe queries in every namespace: what "the same index" means here */
  const snapshot = async () => {
    const vectors = await embedder.embed(probes);
    const out: Record<string, Array<Array<[number, number]>>> = {};
    for (const u of users) {
      out[u.userId] = await Promise.all(vectors.map(async (v) => (await server.app.vectors.query(namespaceForUser(u.userId), v, { k: 100, exact: true })).map((h): [number, number] => [h.memoryId, Math.round(h.score * 1e5) / 1e5])));
    }
    return out;
  };
  const wipeVectors = async () => {
    for (const u of users) await server.app.vectors.deleteNamespace(namespaceForUser(u.userId));
  };

  beforeAll(async () => {
    server = await startTestServer();
    tenantA = await server.newTenant('reindex A');
    tenantB = await server.newTenant('reindex B');
    for (const [t, endUser, n] of [[tenantA, 'ann', 23], [tenantA, 'bob', 17], [tenantB, 'cid', 20]] as const) {
      const ids = await seedMemories(server, t.apiKey, endUser, sentences(n, `${endUser}: `));
      users.push({ tenantId: t.tenantId, userId: await endUserId(server, t.tenantId, endUser), ids });
    }
    all = users.flatMap((u) => u.ids).sort((a, b) => a - b);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a full reindex restores every vector after the index was emptied, and queries find memories again', async () => {
    const before = await snapshot();
    await wipeVectors();
    for (const u of users) expect(await server.app.vectors.count(namespaceForUser(u.userId))).toBe(0);
    const progress: number[] = [];
    const result = await reindex(recorded().deps, {}, { batchSize: 8, onProgress: (p) => progress.push(p.done) });
    expect(result).toMatchObject({ reindexed: all.length, total: all.length, resumed: false, batches: Math.ceil(all.length / 8) });
    expect(progress.at(-1)).toBe(all.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    for (const u of users) expect((await server.app.vectors.listIds(namespaceForUser(u.userId))).sort((a, b) => a - b)).toEqual([...u.ids].sort((a, b) => a - b));
    expect(await snapshot()).toEqual(before);
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(tenantA.apiKey, 'ann'), body: { query: 'sourdough bread', k: 3 } });
    expect(q.status).toBe(200);
    // (under heavy load the query may answer degraded, from the lexical pass: the memory is still among the top 3)
    expect(q.body.memories.map((m: { text: string }) => m.text).join(' ')).toContain('sourdough bread');
  });

  it('an interrupted run resumes after its last committed batch, redoes none, and ends with the same vectors as a fresh full index', async () => {
    await reindex(recorded().deps, {}, { batchSize: 10 });
    const fresh = await snapshot();
    await wipeVectors();

    const first = recorded();
    let batches = 0;
    await expect(reindex(first.deps, {}, { batchSize: 10, onProgress: () => { if (++batches === 3) throw new Interrupt('operator pressed Ctrl-C'); } })).rejects.toThrow(Interrupt);
    expect(first.embedded).toEqual(all.slice(0, 30));
    const run = await server.app.db.kysely.selectFrom('reindex_runs').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(run).toMatchObject({ status: 'interrupted', done: 30, batches: 3 });
    expect(Number(run.cursor)).toBe(all[29]);
    expect(run.last_error).toContain('operator pressed Ctrl-C');

    const second = recorded();
    const resumed = await reindex(second.deps, {}, { batchSize: 10, resume: true });
    expect(resumed).toMatchObject({ run_id: Number(run.id), resumed: true, reindexed: all.length - 30, total: all.length });
    expect(second.embedded).toEqual(all.slice(30));
    expect(new Set([...first.embedded, ...second.embedded]).size).toBe(all.length);
    expect(await snapshot()).toEqual(fresh);
    const done = await server.app.db.kysely.selectFrom('reindex_runs').select(['status', 'done']).where('id', '=', run.id).executeTakeFirstOrThrow();
    expect(done).toEqual({ status: 'done', done: all.length });
  });

  it('--resume with nothing unfinished starts a new full run', async () => {
    const r = recorded();
    const result = await reindex(r.deps, {}, { resume: true });
    expect(result.resumed).toBe(false);
    expect(r.embedded).toEqual(all);
  });

  it('a tenant- or user-scoped run touches only that scope', async () => {
    await wipeVectors();
    const r = recorded();
    await reindex(r.deps, { tenantId: tenantB.tenantId });
    expect(r.embedded).toEqual(users[2].ids);
    expect(await server.app.vectors.count(namespaceForUser(users[0].userId))).toBe(0);
    expect(await server.app.vectors.count(namespaceForUser(users[2].userId))).toBe(users[2].ids.length);
    const u = recorded();
    await reindex(u.deps, { tenantId: tenantA.tenantId, userId: users[1].userId });
    expect(u.embedded).toEqual(users[1].ids);
    expect(await server.app.vectors.count(namespaceForUser(users[0].userId))).toBe(0);
    // and a resume of one scope never continues another scope's run
    const interrupted = recorded();
    await expect(reindex(interrupted.deps, { tenantId: tenantA.tenantId }, { batchSize: 5, onProgress: () => { throw new Interrupt('stop'); } })).rejects.toThrow(Interrupt);
    const other = recorded();
    const otherRun = await reindex(other.deps, { tenantId: tenantB.tenantId }, { resume: true });
    expect(otherRun.resumed).toBe(false);
    const back = recorded();
    const resumedA = await reindex(back.deps, { tenantId: tenantA.tenantId }, { batchSize: 5, resume: true });
    expect(resumedA.resumed).toBe(true);
    expect(back.embedded).toEqual([...users[0].ids, ...users[1].ids].sort((a, b) => a - b).slice(5));
  });

  it('the embedding worker runs a queued reindex task to completion on the local queue', async () => {
    await wipeVectors();
    const admin = await server.app.admin.reindex({ principal: null, meta: { requestId: 'test', ipAddress: null, userAgent: null, audit: { written: false } } }, { tenant_id: tenantA.tenantId });
    expect(admin.status).toBe('queued');
    await server.queue!.runUntilIdle();
    expect(await server.app.vectors.count(namespaceForUser(users[0].userId))).toBe(users[0].ids.length);
    expect(await server.app.vectors.count(namespaceForUser(users[1].userId))).toBe(users[1].ids.length);
    expect(await server.app.vectors.count(namespaceForUser(users[2].userId))).toBe(0);
  });
});

describe('reindex with the embedder worker threads', () => {
  let server: TestServer;
  const pooled = createLocalEmbedder({ workers: 2, poolMinBatch: 1 });
  const inThread = createLocalEmbedder();
  let texts: Map<number, { userId: number; text: string }>;
  let all: number[];
  beforeAll(async () => {
    server = await startTestServer({}, { embedder: pooled });
    const t = await server.newTenant('reindex pool');
    texts = new Map();
    for (const [endUser, n] of [['eve', 26], ['fay', 19]] as const) {
      const items = sentences(n, `${endUser}: `);
      const ids = await seedMemories(server, t.apiKey, endUser, items);
      const userId = await endUserId(server, t.tenantId, endUser);
      ids.forEach((id, i) => texts.set(id, { userId, text: items[i] }));
    }
    all = [...texts.keys()].sort((a, b) => a - b);
    await pooled.warmBulk?.();
  });
  afterAll(async () => {
    await server.stop();
    await pooled.close?.();
  });

  it('an interrupted pooled run resumes after its last committed batch and ends with the vectors the calling thread computes', async () => {
    for (const userId of new Set([...texts.values()].map((x) => x.userId))) await server.app.vectors.deleteNamespace(namespaceForUser(userId));
    const pooledBefore = pooled.stats.pooled;
    const first = recordingDeps(server);
    let batches = 0;
    // batch 3 has been computed ahead (on the workers) when batch 2's progress throws: it is not written
    await expect(reindex(first.deps, {}, { batchSize: 8, onProgress: () => { if (++batches === 2) throw new Interrupt('killed'); } })).rejects.toThrow(Interrupt);
    expect(first.embedded).toEqual(all.slice(0, 16));
    expect(pooled.stats.pooled - pooledBefore).toBeGreaterThanOrEqual(16);
    const run = await server.app.db.kysely.selectFrom('reindex_runs').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(run).toMatchObject({ status: 'interrupted', done: 16, batches: 2 });
    expect(Number(run.cursor)).toBe(all[15]);

    const second = recordingDeps(server);
    const resumed = await reindex(second.deps, {}, { batchSize: 8, resume: true });
    expect(resumed).toMatchObject({ run_id: Number(run.id), resumed: true, reindexed: all.length - 16, total: all.length });
    expect(second.embedded).toEqual(all.slice(16));
    expect(pooled.stats.poolFailures).toBe(0);

    // every stored vector is the one the calling thread computes for the memory's text
    const expected = await inThread.embed(all.map((id) => texts.get(id)!.text));
    for (const [i, id] of all.entries()) {
      const ns = namespaceForUser(texts.get(id)!.userId);
      const [hit] = await server.app.vectors.query(ns, expected[i], { k: 1, exact: true, filter: { memoryIds: [id] } });
      expect(hit?.score).toBeCloseTo(1, 5);
    }
    const ready = await server.app.db.kysely.selectFrom('memories').select('embedding_status').distinct().execute();
    expect(ready).toEqual([{ embedding_status: 'ready' }]);
  });
});

describe('reindex --rebuild after an embedder dimension change', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ VECTOR_STORE: 'pg-array' });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('drops the vector table of the old dimension, recreates it for the new one and re-embeds everything', async () => {
    const t = await server.newTenant('rebuild');
    const ids = await seedMemories(server, t.apiKey, 'dee', sentences(12));
    const userId = await endUserId(server, t.tenantId, 'dee');
    const db = server.app.db.kysely;
    // A store opened at another dimension refuses the existing table — what a model change looks like at boot.
    const small = createLocalEmbedder({ tuning: { dimension: 128 } });
    await expect(createPgArrayStore({ db }).open(small.dimension)).rejects.toThrow(/reindex --rebuild/);

    const store = createPgArrayStore({ db });
    expect(await rebuildVectorIndex(db, store, small.dimension)).toEqual(['memory_vectors_array']);
    const embedded: number[] = [];
    const memories: ReindexDeps['memories'] = {
      computeEmbeddings: async (rows) => ({ rows, vectors: await small.embed(rows.map((r) => `memory ${r.id}`)) }),
      writeEmbeddings: async ({ rows, vectors }) => {
        embedded.push(...rows.map((r) => Number(r.id)));
        await store.upsertMany(rows.map((r, i) => ({ namespace: namespaceForUser(r.user_id), records: [{ memoryId: Number(r.id), vector: vectors[i], metadata: { tier: 'hot', retentionStatus: 'active', environment: 'production', projectId: null, tags: [], source: null } }] })));
        return rows.length;
      },
    };
    const result = await reindex({ db, memories, embedder: small, clock: server.app.clock }, {});
    expect(result.reindexed).toBe(ids.length);
    expect((await store.listIds(namespaceForUser(userId))).sort((a, b) => a - b)).toEqual(ids);
    const hits = await store.query(namespaceForUser(userId), (await small.embed(['memory 1']))[0], { k: 1 });
    expect(hits).toHaveLength(1);
    expect(await dropVectorTables(db)).toEqual(['memory_vectors_array']);
  });
});
