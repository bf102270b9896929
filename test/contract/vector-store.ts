import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { VectorMetadata, VectorStore } from '#shared/ports/vector-store.ts';

const DIM = 8;
const meta = (over: Partial<VectorMetadata> = {}): VectorMetadata => ({
  tier: 'hot', retentionStatus: 'active', environment: 'production', projectId: null, tags: [], source: null, ...over,
});
const unit = (seed: number): number[] => {
  const v = Array.from({ length: DIM }, (_, i) => Math.sin(seed * 31 + i * 7) + (i === seed % DIM ? 2 : 0));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

/** The VectorStore port's contract: every adapter must pass it unchanged. */
export function vectorStoreContract(name: string, factory: () => Promise<{ store: VectorStore; cleanup?: () => Promise<void> }>) {
  describe(`VectorStore contract: ${name}`, () => {
    let store: VectorStore;
    let cleanup: (() => Promise<void>) | undefined;
    const ns = (s: string) => `memorysync-user-${s}-${Math.random().toString(36).slice(2, 8)}`;

    beforeAll(async () => {
      ({ store, cleanup } = await factory());
      await store.open(DIM);
    });
    afterAll(async () => {
      await store.close();
      await cleanup?.();
    });

    it('opening twice with the same dimension is harmless', async () => {
      await expect(store.open(DIM)).resolves.toBeUndefined();
    });

    it('refuses to open with another dimension than the stored vectors', async () => {
      await expect(store.open(DIM + 1)).rejects.toThrow(/dimension|-d/);
    });

    it('finds the nearest vector first, with cosine similarity as the score', async () => {
      const n = ns('a');
      await store.upsert(n, [1, 2, 3, 4, 5].map((i) => ({ memoryId: i, vector: unit(i), metadata: meta() })));
      const hits = await store.query(n, unit(3), { k: 3 });
      expect(hits[0].memoryId).toBe(3);
      expect(hits[0].score).toBeCloseTo(1, 5);
      expect(hits).toHaveLength(3);
      expect(hits[0].score).toBeGreaterThanOrEqual(hits[1].score);
    });

    it('never returns vectors of another namespace', async () => {
      const a = ns('victim');
      const b = ns('attacker');
      await store.upsert(a, [{ memoryId: 100, vector: unit(9), metadata: meta() }]);
      await store.upsert(b, [{ memoryId: 200, vector: unit(1), metadata: meta() }]);
      const hits = await store.query(b, unit(9), { k: 10 });
      expect(hits.map((h) => h.memoryId)).toEqual([200]);
      expect(await store.delete(b, [100])).toBe(0);
      expect(await store.count(a)).toBe(1);
    });

    it('reads stored vectors back by id, only from the namespace asked, after replacement and deletion', async () => {
      const n = ns('get');
      const other = ns('get-other');
      // a vector that is not unit length: adapters may normalise, so compare by cosine
      const raw = unit(4).map((x) => x * 3);
      await store.upsert(n, [{ memoryId: 1, vector: unit(1), metadata: meta() }, { memoryId: 2, vector: raw, metadata: meta() }]);
      await store.upsert(other, [{ memoryId: 3, vector: unit(3), metadata: meta() }]);
      const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
      const got = await store.getVectors(n, [1, 2, 3, 99]);
      expect([...got.keys()].sort()).toEqual([1, 2]);
      expect(got.get(1)).toHaveLength(DIM);
      expect(cosine(got.get(1)!, unit(1))).toBeCloseTo(1, 5);
      expect(cosine(got.get(2)!, unit(4))).toBeCloseTo(1, 5);
      expect(cosine(got.get(1)!, unit(2))).toBeLessThan(0.99);
      expect((await store.getVectors(other, [1, 2])).size).toBe(0);
      await store.upsert(n, [{ memoryId: 1, vector: unit(5), metadata: meta() }]);
      expect(cosine((await store.getVectors(n, [1])).get(1)!, unit(5))).toBeCloseTo(1, 5);
      await store.delete(n, [2]);
      expect([...(await store.getVectors(n, [1, 2])).keys()]).toEqual([1]);
      expect((await store.getVectors(n, [])).size).toBe(0);
      expect((await store.getVectors(ns('never-written'), [1])).size).toBe(0);
    });

    it('upserting the same memory id replaces its vector and metadata', async () => {
      const n = ns('u');
      await store.upsert(n, [{ memoryId: 1, vector: unit(1), metadata: meta({ tags: ['x'] }) }]);
      await store.upsert(n, [{ memoryId: 1, vector: unit(2), metadata: meta({ tags: ['y'] }) }]);
      expect(await store.count(n)).toBe(1);
      const hits = await store.query(n, unit(2), { k: 1, filter: { tagsAny: ['y'] } });
      expect(hits[0]).toMatchObject({ memoryId: 1 });
      expect(await store.query(n, unit(2), { k: 1, filter: { tagsAny: ['x'] } })).toEqual([]);
    });

    it('upsertMany writes several namespaces at once, each vector only into its own namespace', async () => {
      const a = ns('many-a');
      const b = ns('many-b');
      await store.upsert(a, [{ memoryId: 1, vector: unit(5), metadata: meta({ tags: ['old'] }) }]);
      await store.upsertMany([
        { namespace: a, records: [1, 2, 3].map((i) => ({ memoryId: i, vector: unit(i), metadata: meta({ tags: [`a${i}`] }) })) },
        { namespace: b, records: [{ memoryId: 1, vector: unit(4), metadata: meta({ tags: ['b1'], source: 'b' }) }] },
        { namespace: a, records: [] },
      ]);
      expect(await store.listIds(a)).toEqual([1, 2, 3]);
      expect(await store.listIds(b)).toEqual([1]);
      // memory 1 of `a` was replaced (vector and metadata); memory 1 of `b` is another vector
      const [hitA] = await store.query(a, unit(1), { k: 1, filter: { tagsAny: ['a1'] } });
      expect(hitA).toMatchObject({ memoryId: 1 });
      expect(hitA.score).toBeCloseTo(1, 5);
      expect(await store.query(a, unit(5), { k: 3, filter: { tagsAny: ['old'] } })).toEqual([]);
      const [hitB] = await store.query(b, unit(4), { k: 1, filter: { sources: ['b'] } });
      expect(hitB.score).toBeCloseTo(1, 5);
      expect(await store.query(b, unit(1), { k: 10 })).toHaveLength(1);
      // a memory id given twice for one namespace keeps its last record
      await store.upsertMany([{ namespace: b, records: [{ memoryId: 9, vector: unit(2), metadata: meta() }, { memoryId: 9, vector: unit(3), metadata: meta({ tags: ['last'] }) }] }]);
      const [last] = await store.query(b, unit(3), { k: 1, filter: { memoryIds: [9] } });
      expect(last.score).toBeCloseTo(1, 5);
      expect(await store.query(b, unit(3), { k: 1, filter: { tagsAny: ['last'] } })).toHaveLength(1);
      await expect(store.upsertMany([])).resolves.toBeUndefined();
    });

    it('stores vectors as given: exact search scores equal the cosine computed in JavaScript', async () => {
      const n = ns('digits');
      // values with long and exponent-form decimal expansions (1e-7, 5e-324 …) must survive the literal
      const raw = [1e-7, -0.123456789012345, 0.3333333333333333, 2.5e-8, 0.7071067811865476, -0.5, 1 / 3, 0];
      const length = Math.hypot(...raw);
      const v = raw.map((x) => x / length);
      await store.upsertMany([{ namespace: n, records: [{ memoryId: 1, vector: v, metadata: meta() }] }]);
      for (const probe of [unit(1), unit(2), v]) {
        const [hit] = await store.query(n, probe, { k: 1, exact: true });
        const cosine = probe.reduce((s, x, i) => s + x * v[i], 0);
        expect(hit.score).toBeCloseTo(cosine, 5);
      }
    });

    it('runs the search inside a statement of the caller (stores in the primary database)', async (ctx) => {
      if (!store.queryJoined) ctx.skip();
      const n = ns('joined');
      const other = ns('joined-other');
      await store.upsert(n, [1, 2, 3, 4].map((i) => ({ memoryId: i, vector: unit(i), metadata: meta({ tags: i === 4 ? ['x'] : [] }) })));
      await store.upsert(other, [{ memoryId: 3, vector: unit(3), metadata: meta() }]);
      const rows = await store.queryJoined!(n, unit(3), { k: 3 }, (hits) =>
        sql<{ memory_id: number; score: number; label: string }>`select h.memory_id, h.score, l.label
          from (${hits}) h join (values (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four')) as l(id, label) on l.id = h.memory_id
          order by h.score desc`);
      expect(rows).toHaveLength(3);
      expect(rows[0]).toMatchObject({ label: 'three' });
      expect(Number(rows[0].memory_id)).toBe(3);
      expect(Number(rows[0].score)).toBeCloseTo(1, 5);
      const hits = await store.query(n, unit(3), { k: 3 });
      expect(rows.map((r) => Number(r.memory_id))).toEqual(hits.map((h) => h.memoryId));
      const filtered = await store.queryJoined!(n, unit(3), { k: 10, filter: { tagsAny: ['x'] } }, (hits) => hits);
      expect(filtered.map((r) => Number(r.memory_id))).toEqual([4]);
    });

    it('applies every metadata filter', async () => {
      const n = ns('f');
      await store.upsert(n, [
        { memoryId: 1, vector: unit(1), metadata: meta({ tier: 'hot', projectId: 'proj_a', tags: ['work'], source: 'n8n' }) },
        { memoryId: 2, vector: unit(1), metadata: meta({ tier: 'cold', projectId: 'proj_b', tags: ['home'], source: 'dify' }) },
        { memoryId: 3, vector: unit(1), metadata: meta({ retentionStatus: 'archived', environment: 'staging' }) },
      ]);
      const ids = async (filter: object) => (await store.query(n, unit(1), { k: 10, filter })).map((h) => h.memoryId).sort();
      expect(await ids({ tiers: ['cold'] })).toEqual([2]);
      expect(await ids({ projectId: 'proj_a' })).toEqual([1]);
      expect(await ids({ projectId: null })).toEqual([3]);
      expect(await ids({ tagsAny: ['home', 'nope'] })).toEqual([2]);
      expect(await ids({ sources: ['n8n'] })).toEqual([1]);
      expect(await ids({ retentionStatus: ['active'] })).toEqual([1, 2]);
      expect(await ids({ environment: 'staging' })).toEqual([3]);
      expect(await ids({ memoryIds: [2, 3] })).toEqual([2, 3]);
    });

    it('updates metadata without touching the vector', async () => {
      const n = ns('m');
      await store.upsert(n, [{ memoryId: 7, vector: unit(7), metadata: meta() }]);
      await store.updateMetadata(n, 7, { retentionStatus: 'archived' });
      expect(await store.query(n, unit(7), { k: 1, filter: { retentionStatus: ['active'] } })).toEqual([]);
      const [hit] = await store.query(n, unit(7), { k: 1, filter: { retentionStatus: ['archived'] } });
      expect(hit.score).toBeCloseTo(1, 5);
    });

    it('deletes single vectors and whole namespaces', async () => {
      const n = ns('d');
      await store.upsert(n, [1, 2, 3].map((i) => ({ memoryId: i, vector: unit(i), metadata: meta() })));
      expect(await store.delete(n, [2])).toBe(1);
      expect(await store.listIds(n)).toEqual([1, 3]);
      expect(await store.deleteNamespace(n)).toBe(2);
      expect(await store.count(n)).toBe(0);
    });

    it('exact and approximate search agree on a small namespace', async () => {
      const n = ns('e');
      await store.upsert(n, Array.from({ length: 50 }, (_, i) => ({ memoryId: i + 1, vector: unit(i + 1), metadata: meta() })));
      const approx = await store.query(n, unit(17), { k: 5 });
      const exact = await store.query(n, unit(17), { k: 5, exact: true });
      expect(approx.map((h) => h.memoryId)).toEqual(exact.map((h) => h.memoryId));
    });

    it('reports itself healthy', async () => {
      expect(await store.health()).toBe(true);
    });
  });
}
