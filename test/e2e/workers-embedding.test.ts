import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalEmbedder } from '#shared/adapters/local-embedder/index.ts';
import type { Embedder } from '#shared/ports/embedder.ts';
import type { Task } from '#shared/ports/queue.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { endUserId, seedMemories, sentences } from '../support/worker-fixtures.ts';

/**
 * The embedding family on the local queue (batches of 10 records, processed side by side): the `embed`
 * tasks of a batch are embedded together, each memory only into its own end user's namespace, and a
 * memory that cannot be embedded fails only its own task.
 */
describe('embedding tasks are embedded together, batch by batch', () => {
  let server: TestServer;
  const inner = createLocalEmbedder();
  /** sizes of the embedder calls the app made */
  const calls: number[] = [];
  const counting: Embedder = { model: inner.model, dimension: inner.dimension, warm: () => inner.warm(), embed: (texts) => (calls.push(texts.length), inner.embed(texts)) };
  let tenant: { apiKey: string; tenantId: string };
  let users: Array<{ userId: number; ids: number[] }>;

  const task = (payload: { userId: number; memoryIds: number[] }, tenantId = tenant.tenantId): Task => ({ id: randomUUID(), family: 'embedding', tenantId, type: 'embed', payload, createdAt: new Date().toISOString() });
  const statuses = async (ids: number[]) => Object.fromEntries((await server.app.db.kysely.selectFrom('memories').select(['id', 'embedding_status']).where('id', 'in', ids).execute()).map((r) => [Number(r.id), r.embedding_status]));
  const makePending = async (ids: number[]) => {
    await server.app.db.kysely.updateTable('memories').set({ embedding_status: 'pending' }).where('id', 'in', ids).execute();
    for (const u of users) await server.app.vectors.delete(namespaceForUser(u.userId), ids);
  };

  beforeAll(async () => {
    server = await startTestServer({}, { embedder: counting });
    tenant = await server.newTenant('embedding family');
    users = [];
    for (const [endUser, n] of [['gil', 12], ['hal', 8]] as const) {
      const ids = await seedMemories(server, tenant.apiKey, endUser, sentences(n, `${endUser}: `));
      users.push({ userId: await endUserId(server, tenant.tenantId, endUser), ids });
    }
  });
  afterAll(async () => {
    await server.stop();
  });

  it('one-memory tasks of two end users are embedded in shared embedder calls, each vector in its own namespace', async () => {
    const all = users.flatMap((u) => u.ids);
    await makePending(all);
    calls.length = 0;
    // interleaved, so every batch of 10 records holds memories of both users
    const tasks = users[0].ids.flatMap((id, i) => [task({ userId: users[0].userId, memoryIds: [id] }), ...(users[1].ids[i] ? [task({ userId: users[1].userId, memoryIds: [users[1].ids[i]] })] : [])]);
    await server.app.queue.send(tasks);
    await server.queue!.runUntilIdle();
    expect(Object.values(await statuses(all))).toEqual(all.map(() => 'ready'));
    for (const u of users) expect((await server.app.vectors.listIds(namespaceForUser(u.userId))).sort((a, b) => a - b)).toEqual([...u.ids].sort((a, b) => a - b));
    // 20 tasks, 20 memories: far fewer embedder calls than tasks, the biggest with memories of several tasks
    expect(calls.reduce((s, n) => s + n, 0)).toBe(all.length);
    expect(calls.length).toBeLessThanOrEqual(6);
    expect(Math.max(...calls)).toBeGreaterThan(1);
    // the vectors are those of the texts: each memory is its own nearest neighbour
    const [text] = sentences(1, 'gil: ');
    const [hit] = await server.app.vectors.query(namespaceForUser(users[0].userId), (await inner.embed([text]))[0], { k: 1, exact: true });
    expect(hit.memoryId).toBe(users[0].ids[0]);
    expect(hit.score).toBeCloseTo(1, 5);
  });

  it("a task naming another end user's memory does not embed it, and ready memories are not embedded again", async () => {
    const [theirs] = users[1].ids;
    await makePending([theirs]);
    calls.length = 0;
    await server.app.queue.send([task({ userId: users[0].userId, memoryIds: [theirs, users[0].ids[0]] })]);
    await server.queue!.runUntilIdle();
    expect((await statuses([theirs]))[theirs]).toBe('pending');
    expect(calls).toEqual([]);
    expect(await server.app.vectors.listIds(namespaceForUser(users[0].userId))).not.toContain(theirs);
    expect(await server.app.vectors.listIds(namespaceForUser(users[1].userId))).not.toContain(theirs);
  });

  it('a memory that cannot be decrypted fails only its own task (then the DLQ); the others of its batch are embedded', async () => {
    const [bad, ...good] = users[0].ids.slice(0, 6);
    await makePending([bad, ...good]);
    await server.app.db.kysely.updateTable('memories').set({ text_ciphertext: new Uint8Array(48).fill(7) }).where('id', '=', bad).execute();
    const deadBefore = server.queue!.deadLetters('embedding').length;
    const poison = task({ userId: users[0].userId, memoryIds: [bad] });
    await server.app.queue.send([poison, ...good.map((id) => task({ userId: users[0].userId, memoryIds: [id] }))]);
    await server.queue!.runUntilIdle({ advanceTime: true });
    const after = await statuses([bad, ...good]);
    expect(good.map((id) => after[id])).toEqual(good.map(() => 'ready'));
    expect(after[bad]).toBe('pending');
    const dead = server.queue!.deadLetters('embedding').slice(deadBefore);
    expect(dead.map((d) => JSON.parse(d.body).id)).toEqual([poison.id]);
  });
});
