import { loadConfig } from '#shared/config.ts';
import { startLocalServer } from '#local/runtime.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { loadParaphraseSet, measureEmbedThroughput, measureParaphraseRecall } from './embedder-recall.ts';
import { fmt, percentile, syntheticMemories, syntheticQueries, table, timedPool } from './synthetic.ts';

/**
 * Issue 3's benchmark on the embedded default (PGlite + pgvector, offline embedder, in-process cache):
 * N memories for one end user through the full HTTP chain, then query latency through HTTP vs the bare
 * vector query on the same data, ANN recall vs exact search, and paraphrase recall.
 */
export async function benchCore(options: { memories: number; queries: number }): Promise<string> {
  const config = loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false' });
  const server = await startLocalServer(config, {}, { startBackground: false });
  const out: string[] = [];
  try {
    const { apiKey, tenantId } = await server.app.identity.bootstrapTenant('bench');
    const headers = { 'content-type': 'application/json', 'X-API-Key': apiKey, 'X-End-User-ID': 'bench-user' };
    const texts = syntheticMemories(options.memories);

    const t0 = performance.now();
    const addLatencies = await timedPool(texts, 4, async (text) => {
      const res = await fetch(`${server.url}/memory/add`, { method: 'POST', headers, body: JSON.stringify({ text }) });
      if (res.status !== 201) throw new Error(`add answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    });
    const addSeconds = (performance.now() - t0) / 1000;

    const queries = syntheticQueries(options.queries);
    const queryLatencies = await timedPool(queries, 1, async (query) => {
      const res = await fetch(`${server.url}/memory/query`, { method: 'POST', headers, body: JSON.stringify({ query, k: 10 }) });
      if (res.status !== 200) throw new Error(`query answered ${res.status}`);
      await res.arrayBuffer();
    });

    const userId = await server.app.identity.resolveEndUser(tenantId, 'bench-user');
    const namespace = namespaceForUser(userId);
    const vectors = await server.app.embedder.embed(queries);
    const bareLatencies: number[] = [];
    let overlap = 0;
    for (const v of vectors) {
      const t = performance.now();
      const approx = await server.app.vectors.query(namespace, v, { k: 10 });
      bareLatencies.push(performance.now() - t);
      const exact = await server.app.vectors.query(namespace, v, { k: 10, exact: true });
      const truth = new Set(exact.map((h) => h.memoryId));
      overlap += approx.filter((h) => truth.has(h.memoryId)).length / Math.max(1, truth.size);
    }
    const exactLatencies: number[] = [];
    for (const v of vectors.slice(0, 50)) {
      const t = performance.now();
      await server.app.vectors.query(namespace, v, { k: 10, exact: true });
      exactLatencies.push(performance.now() - t);
    }

    out.push(
      table(`Write path: ${options.memories.toLocaleString()} memories, one end user, POST /memory/add over HTTP (4 concurrent clients)`, ['metric', 'value'], [
        ['adds per second', fmt(options.memories / addSeconds)],
        ['p50 latency (ms)', fmt(percentile(addLatencies, 50))],
        ['p95 latency (ms)', fmt(percentile(addLatencies, 95))],
        ['embedded synchronously (embedding_status=ready)', `${await countReady(server, tenantId)} / ${options.memories}`],
      ]),
    );
    const httpP50 = percentile(queryLatencies, 50);
    const bareP50 = percentile(bareLatencies, 50);
    out.push(
      table(`Read path: ${options.queries} distinct queries, k=10, over ${options.memories.toLocaleString()} memories`, ['path', 'p50 (ms)', 'p95 (ms)'], [
        ['POST /memory/query (full HTTP chain, hybrid ranking)', fmt(httpP50), fmt(percentile(queryLatencies, 95))],
        ['bare vector query (HNSW, same data)', fmt(bareP50), fmt(percentile(bareLatencies, 95))],
        ['bare exact search (sequential scan)', fmt(percentile(exactLatencies, 50)), fmt(percentile(exactLatencies, 95))],
        ['ratio HTTP / bare HNSW (target ≤ 1.3×)', `${fmt(httpP50 / bareP50, 2)}×`, `${fmt(percentile(queryLatencies, 95) / percentile(bareLatencies, 95), 2)}×`],
      ]),
    );
    out.push(table('ANN quality', ['metric', 'value'], [['recall@10 of HNSW vs exact search (target ≥ 0.98)', fmt(overlap / vectors.length, 3)]]));

    const recall = await measureParaphraseRecall(server.app.embedder);
    const endToEnd = await paraphraseRecallThroughApi(server.url, apiKey);
    const throughput = await measureEmbedThroughput(server.app.embedder);
    out.push(
      table(`Paraphrase recall (${recall.questions} questions over ${recall.memories} memories, answers phrased with other words)`, ['ranking', 'recall@1', 'recall@5', 'recall@10'], [
        [`embedder only, exact cosine (${server.app.embedder.model})`, fmt(recall.recallAt1, 3), fmt(recall.recallAt5, 3), fmt(recall.recallAt10, 3)],
        ['POST /memory/query (vectors + blind-token lexical + recency/importance)', fmt(endToEnd.at1, 3), fmt(endToEnd.at5, 3), fmt(endToEnd.at10, 3)],
      ]),
    );
    out.push(table('Offline embedder', ['metric', 'value'], [['texts embedded per second (one core)', fmt(throughput.textsPerSecond, 0)]]));
  } finally {
    await server.stop();
  }
  return out.join('\n');
}

async function countReady(server: Awaited<ReturnType<typeof startLocalServer>>, tenantId: string): Promise<number> {
  const row = await server.app.db.kysely.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('embedding_status', '=', 'ready').executeTakeFirstOrThrow();
  return Number(row.n);
}

async function paraphraseRecallThroughApi(url: string, apiKey: string) {
  const set = loadParaphraseSet();
  const headers = { 'content-type': 'application/json', 'X-API-Key': apiKey, 'X-End-User-ID': 'paraphrase-user' };
  const idByKey = new Map<string, number>();
  for (const m of set.memories) {
    const res = await fetch(`${url}/memory/add`, { method: 'POST', headers, body: JSON.stringify({ text: m.text, deduplicate: false }) });
    idByKey.set(m.id, ((await res.json()) as { id: number }).id);
  }
  let at1 = 0;
  let at5 = 0;
  let at10 = 0;
  for (const q of set.questions) {
    const res = await fetch(`${url}/memory/query`, { method: 'POST', headers, body: JSON.stringify({ query: q.text, k: 10 }) });
    const ids = ((await res.json()) as { memories: Array<{ id: number }> }).memories.map((m) => m.id);
    const rank = ids.indexOf(idByKey.get(q.memoryId) as number);
    if (rank === 0) at1++;
    if (rank >= 0 && rank < 5) at5++;
    if (rank >= 0 && rank < 10) at10++;
  }
  const n = set.questions.length;
  return { at1: at1 / n, at5: at5 / n, at10: at10 / n };
}
