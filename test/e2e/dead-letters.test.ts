import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalEmbedder } from '#shared/adapters/local-embedder/index.ts';
import type { Embedder } from '#shared/ports/embedder.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { bearer, signupOwner, type Account } from '../support/accounts.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

const OPS_EMAIL = `ops-${randomBytes(4).toString('hex')}@platform.test`;

/** An embedder with a fault switch, counting the texts it embedded while healthy. */
function faultyEmbedder(): Embedder & { broken: boolean; embedded: string[] } {
  const inner = createLocalEmbedder();
  const self = {
    broken: false,
    embedded: [] as string[],
    model: inner.model,
    dimension: inner.dimension,
    warm: () => inner.warm(),
    async embed(texts: string[]) {
      if (self.broken) throw new Error('embedding service unavailable (injected fault)');
      self.embedded.push(...texts);
      return inner.embed(texts);
    },
  };
  return self;
}

describe('dead-letter re-drive on the local queue (admin routes)', () => {
  let server: TestServer;
  let ops: Account;
  let customer: Account;
  const embedder = faultyEmbedder();

  beforeAll(async () => {
    server = await startTestServer({ PLATFORM_ADMIN_EMAILS: OPS_EMAIL, EMBED_SYNC_BUDGET_MS: '0' }, { embedder });
    const res = await server.call('POST', '/auth/signup', { body: { email: OPS_EMAIL, password: 'operator password', organization_name: 'Platform' } });
    ops = { token: res.body.tokens.access_token, tenantId: res.body.user.tenant_id, email: OPS_EMAIL, userId: res.body.user.id };
    customer = await signupOwner(server, 'customer');
  });
  afterAll(() => server.stop());

  const counts = async () => {
    const res = await server.call('GET', '/admin/dead-letters', { headers: bearer(ops.token) });
    expect(res.status).toBe(200);
    return Object.fromEntries(res.body.families.map((f: any) => [f.family, f.messages])) as Record<string, number>;
  };
  const adminAudit = (eventType: string) => server.app.db.kysely.selectFrom('audit_logs').selectAll().where('event_type', '=', eventType).where('category', '=', 'admin').execute();

  it('a poison task lands in the DLQ, is re-driven after the fault is fixed, and runs exactly once in effect', async () => {
    const { apiKey } = await server.newTenant('dlq');
    await server.queue!.runUntilIdle();
    embedder.broken = true;
    const text = `Dora keeps the spare key under the blue flowerpot ${randomBytes(3).toString('hex')}`;
    const add = await server.call('POST', '/memory/add', { headers: keyHeaders(apiKey, 'dora'), body: { text } });
    expect(add.status).toBe(201);
    const memoryId = Number(add.body.id);

    // every receive fails until the queue's max receives: the embed task is parked in the DLQ
    await server.queue!.runUntilIdle({ advanceTime: true });
    expect((await counts()).embedding).toBe(1);
    const [dead] = server.queue!.deadLetters('embedding');
    const deadTask = JSON.parse(dead!.body);
    expect(dead!.receiveCount).toBe(5);
    expect(dead!.lastError ?? '').not.toContain(text);
    const row = () => server.app.db.kysely.selectFrom('memories').select(['embedding_status', 'user_id']).where('id', '=', memoryId).executeTakeFirstOrThrow();
    expect((await row()).embedding_status).toBe('pending');
    expect(await server.app.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', '=', deadTask.id).execute()).toEqual([]);

    // the fault is fixed; the operator re-drives the family
    embedder.broken = false;
    const redrive = await server.call('POST', '/admin/dead-letters/embedding/redrive', { headers: bearer(ops.token) });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toEqual({ status: 'redriven', redriven: 1, results: [{ family: 'embedding', moved: 1, remaining: 0 }] });
    await server.queue!.runUntilIdle({ advanceTime: true });

    expect((await row()).embedding_status).toBe('ready');
    expect(await server.app.vectors.listIds(namespaceForUser((await row()).user_id))).toEqual([memoryId]);
    expect(embedder.embedded.filter((t) => t === text)).toHaveLength(1);
    expect(await server.app.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', '=', deadTask.id).execute()).toHaveLength(1);
    expect((await counts()).embedding).toBe(0);

    // a stray copy of the same task (a crash between send and delete of a re-drive) does not run again
    await server.app.queue.send([deadTask]);
    await server.queue!.runUntilIdle({ advanceTime: true });
    expect(embedder.embedded.filter((t) => t === text)).toHaveLength(1);
    expect(server.queue!.stats('embedding')).toMatchObject({ visible: 0, invisible: 0, deadLetters: 0 });

    const audit = (await adminAudit('admin.dead_letters_redriven')).filter((a) => (a.payload_json as any).family === 'embedding');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.payload_json).toMatchObject({ redriven: 1 });
    expect(audit[0]!.tenant_id).toBeNull();
    expect(await adminAudit('admin.dead_letters_listed')).toHaveLength(2);
  });

  it('re-drives every family at once and at most `limit` per family', async () => {
    const { apiKey } = await server.newTenant('dlq-many');
    await server.queue!.runUntilIdle();
    embedder.broken = true;
    for (let i = 0; i < 3; i++) {
      expect((await server.call('POST', '/memory/add', { headers: keyHeaders(apiKey, `user-${i}`), body: { text: `note ${i} ${randomBytes(3).toString('hex')}` } })).status).toBe(201);
    }
    await server.queue!.runUntilIdle({ advanceTime: true });
    expect((await counts()).embedding).toBe(3);
    embedder.broken = false;

    const one = await server.call('POST', '/admin/dead-letters/embedding/redrive?limit=1', { headers: bearer(ops.token) });
    expect(one.body.results).toEqual([{ family: 'embedding', moved: 1, remaining: 2 }]);
    const all = await server.call('POST', '/admin/dead-letters/redrive', { headers: bearer(ops.token), body: {} });
    expect(all.status).toBe(200);
    expect(all.body.redriven).toBe(2);
    expect(all.body.results).toHaveLength(7);
    await server.queue!.runUntilIdle({ advanceTime: true });
    expect((await counts()).embedding).toBe(0);
    const pending = await server.app.db.kysely.selectFrom('memories').select('id').where('embedding_status', '!=', 'ready').execute();
    expect(pending).toEqual([]);
  });

  it('is for platform operators only, and refuses bad input with 422 without moving anything', async () => {
    const { apiKey } = await server.newTenant('dlq-outsider');
    for (const [method, path] of [['GET', '/admin/dead-letters'], ['POST', '/admin/dead-letters/embedding/redrive']] as const) {
      expect((await server.call(method, path)).status, `${method} ${path}`).toBe(401);
      expect((await server.call(method, path, { headers: bearer(customer.token) })).status, `${method} ${path}`).toBe(403);
      expect((await server.call(method, path, { headers: { 'X-API-Key': apiKey } })).status, `${method} ${path}`).toBe(403);
    }
    for (const path of ['/admin/dead-letters/laundry/redrive', '/admin/dead-letters/embedding/redrive?limit=0', '/admin/dead-letters/embedding/redrive?limit=1001', '/admin/dead-letters/embedding/redrive?other=1']) {
      const res = await server.call('POST', path, { headers: bearer(ops.token) });
      expect(res.status, path).toBe(422);
      expect(res.body.error ?? res.body).toBeTruthy();
    }
    expect((await server.call('POST', '/admin/dead-letters/redrive', { headers: bearer(ops.token), body: { family: 'laundry' } })).status).toBe(422);
  });
});
