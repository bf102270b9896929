import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startLocalServer, type LocalServer } from '#local/runtime.ts';
import { createLocalEmbedder, type LocalEmbedder } from '#shared/adapters/local-embedder/index.ts';
import { loadConfig } from '#shared/config.ts';
import type { Embedder } from '#shared/ports/embedder.ts';
import type { Task } from '#shared/ports/queue.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import type { Principal } from '#shared/services/scope.ts';
import { reindex } from '#shared/tasks/reindex.ts';
import { fmt, syntheticMemories, table } from './synthetic.ts';

/**
 * Worker throughput on the local runtime (in-process queue with SQS semantics, PGlite, offline
 * embedder): embedding tasks/s through the queue, reindex memories/s, webhook deliveries/s to a
 * local receiver. `npm run bench -- --only=workers`.
 */
export async function benchWorkers(options: { memories?: number; deliveries?: number } = {}): Promise<string> {
  const quick = process.argv.includes('--quick');
  const n = options.memories ?? (quick ? 1_000 : 5_000);
  const deliveries = options.deliveries ?? (quick ? 100 : 500);
  const out: string[] = [];
  const backends: Array<[string, Record<string, string>]> = [['PGlite + pgvector (local default)', {}]];
  const pgUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = await pgSchema(pgUrl).catch(() => undefined);
  if (schema) backends.push(['PostgreSQL 15 server + pg-array', { DATABASE_URL: schema.url, VECTOR_STORE: 'pg-array' }]);
  const embedRows: Array<Array<string | number>> = [];
  const reindexRows: Array<Array<string | number>> = [];
  let webhooks: string | undefined;
  // The app's embedder as configured by default (EMBED_WORKERS = CPU count), switchable to the calling
  // thread only for the reindex comparison: both give the same vectors.
  const workers = Number(process.env.EMBED_WORKERS ?? availableParallelism());
  const embedders = { pooled: createLocalEmbedder({ workers }), inThread: createLocalEmbedder() };
  const switchable = { current: embedders.pooled as LocalEmbedder };
  const embedder: Embedder = {
    model: embedders.pooled.model, dimension: embedders.pooled.dimension,
    warm: () => embedders.pooled.warm(), warmBulk: () => switchable.current.warmBulk(), embed: (texts) => switchable.current.embed(texts),
  };
  let poolStartMs = NaN;
  try {
    const started = performance.now();
    await embedders.pooled.warmBulk();
    poolStartMs = performance.now() - started;
    for (const [label, env] of backends) {
      const config = loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false', ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true', ...env });
      const server = await startLocalServer(config, { embedder }, { startBackground: false });
      try {
        await benchBackend(server, label, n, embedRows, reindexRows, { embedders, switchable, workers });
        if (!webhooks && existsSync(fileURLToPath(new URL('../shared/tasks/webhook-delivery.ts', import.meta.url)))) webhooks = await benchWebhooks(server, deliveries);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await schema?.drop();
    await embedders.pooled.close();
  }
  out.push(table(`Embedding tasks through the local queue (${n} memories of 10 end users, offline embedder)`, ['backend', 'memories per task', 'tasks', 'tasks/s', 'memories/s'], embedRows));
  out.push(table('Reindex from the encrypted text (read next batch + decrypt + embed while the current one is written; cursor committed per batch)', ['backend', 'embed workers', 'batch size', 'memories', 'ms', 'memories/s', '× target', '≥ 2,000/s'], reindexRows));
  out.push(`Embedder worker threads: ${workers}, started (vocabulary loaded in each) in ${fmt(poolStartMs, 0)} ms before the runs; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' / ')}.`);
  if (webhooks) out.push(webhooks);
  return out.join('\n\n');
}

/** Webhook deliveries/s alone (`npm run bench -- --only=webhooks`): PGlite, one local endpoint. */
export async function benchWebhookThroughput(options: { deliveries?: number } = {}): Promise<string> {
  const deliveries = options.deliveries ?? (process.argv.includes('--quick') ? 200 : 500);
  const config = loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false', ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true' });
  const server = await startLocalServer(config, {}, { startBackground: false });
  try {
    return await benchWebhooks(server, deliveries);
  } finally {
    await server.stop();
  }
}

async function pgSchema(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `bench_workers_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await admin.connect();
  await admin.query(`create schema ${name}`);
  await admin.end();
  return {
    url: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${name}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema if exists ${name} cascade`);
      await c.end();
    },
  };
}

interface EmbedderChoice {
  embedders: { pooled: LocalEmbedder; inThread: LocalEmbedder };
  switchable: { current: LocalEmbedder };
  workers: number;
}

async function benchBackend(server: LocalServer, label: string, n: number, embedRows: Array<Array<string | number>>, reindexRows: Array<Array<string | number>>, pool: EmbedderChoice) {
  const { tenantId, apiKey } = await server.app.identity.bootstrapTenant('bench-workers');
  const users = 10;
  const texts = syntheticMemories(n);
  for (let u = 0; u < users; u++) {
    const mine = texts.filter((_, i) => i % users === u);
    for (let i = 0; i < mine.length; i += 50) {
      const res = await post(`${server.url}/memory/bulk-add`, {
        headers: { 'content-type': 'application/json', 'X-API-Key': apiKey, 'X-End-User-ID': `user-${u}` },
        body: JSON.stringify({ items: mine.slice(i, i + 50).map((text) => ({ text })), deduplicate: false }),
      });
      if (res.status !== 207) throw new Error(`bulk-add answered ${res.status}`);
      await res.arrayBuffer();
    }
  }
  await server.queue!.runUntilIdle();
  const rows = await server.app.db.kysely.selectFrom('memories').select(['id', 'user_id']).where('tenant_id', '=', tenantId).orderBy('id').execute();

  // Embedding tasks through the queue: every memory pending again, one `embed` task per 1 or 16 memories of one user.
  for (const perTask of [1, 16]) {
    await server.app.db.kysely.updateTable('memories').set({ embedding_status: 'pending' }).where('tenant_id', '=', tenantId).execute();
    const byUser = new Map<number, number[]>();
    for (const r of rows) (byUser.get(r.user_id) ?? byUser.set(r.user_id, []).get(r.user_id)!).push(Number(r.id));
    const tasks: Task[] = [];
    for (const [userId, ids] of byUser) {
      for (let i = 0; i < ids.length; i += perTask) tasks.push({ id: randomUUID(), family: 'embedding', tenantId, type: 'embed', payload: { userId, memoryIds: ids.slice(i, i + perTask) }, createdAt: new Date().toISOString() });
    }
    const t0 = performance.now();
    await server.app.queue.send(tasks);
    await server.queue!.runUntilIdle();
    const seconds = (performance.now() - t0) / 1000;
    const ready = await server.app.db.kysely.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('embedding_status', '=', 'ready').executeTakeFirstOrThrow();
    if (Number(ready.n) !== rows.length) throw new Error(`embedding tasks left ${rows.length - Number(ready.n)} memories pending`);
    embedRows.push([label, perTask, tasks.length, fmt(tasks.length / seconds), fmt(rows.length / seconds)]);
  }

  // Reindex after the index was emptied: with the embedder's worker threads, and on the calling thread only.
  const runs: Array<[number, 'pooled' | 'inThread']> = [[64, 'pooled'], [256, 'inThread'], [256, 'pooled']];
  for (const [batchSize, which] of runs) {
    for (const userId of new Set(rows.map((r) => r.user_id))) await server.app.vectors.deleteNamespace(namespaceForUser(userId));
    pool.switchable.current = pool.embedders[which];
    // workers stopped after an idle spell are started again before the clock runs
    if (which === 'pooled') await pool.embedders.pooled.warmBulk();
    const t0 = performance.now();
    const r = await reindex({ db: server.app.db.kysely, memories: server.app.memories, embedder: server.app.embedder, clock: server.app.clock }, {}, { batchSize });
    const seconds = (performance.now() - t0) / 1000;
    pool.switchable.current = pool.embedders.pooled;
    const perSecond = r.reindexed / seconds;
    reindexRows.push([label, which === 'pooled' ? pool.workers : 0, batchSize, r.reindexed, fmt(seconds * 1000), fmt(perSecond), `${fmt(perSecond / 2_000, 2)}×`, perSecond >= 2_000 ? 'yes' : 'no']);
  }
}

/** fetch, retried once when an idle keep-alive socket was closed under it (long phases without requests) */
async function post(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, method: 'POST' });
  } catch {
    return fetch(url, { ...init, method: 'POST' });
  }
}

/** memory.created events to a local HTTP receiver: fan-out and signed delivery tasks on the local queue. */
async function benchWebhooks(server: LocalServer, count: number): Promise<string> {
  const { tenantId, apiKey } = await server.app.identity.bootstrapTenant('bench-webhooks');
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const port = (receiver.address() as AddressInfo).port;
    const system: Principal = { kind: 'session', tenantId, accountId: null, accountPublicId: 'bench', apiKeyId: null, role: 'owner', scopes: [], projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false };
    await server.app.webhooks.create({ tenantId, projectId: null, principal: system }, { name: 'bench', url: `http://127.0.0.1:${port}/hook`, events: ['memory.created'] }, { requestId: 'bench', ipAddress: null, userAgent: 'bench', audit: { written: false } });
    const texts = syntheticMemories(count, 7).map((t, i) => `${t} (webhook ${i})`);
    for (const text of texts) {
      const res = await post(`${server.url}/memory/add`, { headers: { 'content-type': 'application/json', 'X-API-Key': apiKey, 'X-End-User-ID': 'webhook-user' }, body: JSON.stringify({ text }) });
      if (res.status !== 201) throw new Error(`add answered ${res.status}`);
      await res.arrayBuffer();
    }
    // each add relays its fan-out task after commit; time the queue, on real timers (attempts deferred
    // by the per-endpoint cap wait out their real delay), from there to the last delivery
    const before = received;
    const t0 = performance.now();
    server.queue!.start();
    const deadline = t0 + 600_000;
    while (received - before < count && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    const seconds = (performance.now() - t0) / 1000;
    await server.queue!.drain(30_000);
    const delivered = received - before;
    return table(`Webhook deliveries to a local receiver (${count} memory.created events, signed, one endpoint, at most ${server.app.config.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT ?? '∞'} in flight)`, ['delivered', 'ms', 'deliveries/s'], [[delivered, fmt(seconds * 1000), fmt(delivered / seconds)]]);
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}
