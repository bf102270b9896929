import { PGlite } from '@electric-sql/pglite';
import { loadConfig } from '#shared/config.ts';
import { startLocalServer } from '#local/runtime.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { fmt, percentile, syntheticMemories, syntheticQueries, table } from './synthetic.ts';

/**
 * Where one POST /memory/query spends its time, on the data of the core bench (`tsx bench/query-breakdown.ts
 * [memories] [queries]`). Wraps the methods of the running app (no source change) and every PGlite statement,
 * then prints the median of each step and the statements a query runs. A diagnostic, not part of `npm run bench`.
 */
const memories = Number(process.argv[2] ?? 1_000);
const queryCount = Number(process.argv[3] ?? 100);

type Span = { name: string; ms: number };
let spans: Span[] | null = null;
const statements: Array<{ sql: string; ms: number }> = [];

function timeMethod(target: object, method: string, name: string) {
  const obj = target as Record<string, (...args: unknown[]) => unknown>;
  const original = obj[method].bind(target);
  obj[method] = async (...args: unknown[]) => {
    const t = performance.now();
    try {
      return await original(...args);
    } finally {
      spans?.push({ name, ms: performance.now() - t });
    }
  };
}

// Every statement PGlite runs, with its time (the dialect calls query(); transactions use exec for BEGIN/COMMIT).
for (const method of ['query', 'exec'] as const) {
  const proto = PGlite.prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = proto[method];
  proto[method] = async function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      if (spans) {
        const ms = performance.now() - t;
        spans.push({ name: 'db (all statements)', ms });
        statements.push({ sql: String(args[0]).replace(/\s+/g, ' ').slice(0, 90), ms });
      }
    }
  };
}

const config = loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false' });
const server = await startLocalServer(config, {}, { startBackground: false });
try {
  const { app } = server;
  const { apiKey, tenantId } = await app.identity.bootstrapTenant('bench');
  const headers = { 'content-type': 'application/json', 'X-API-Key': apiKey, 'X-End-User-ID': 'bench-user' };
  const texts = syntheticMemories(memories);
  for (let i = 0; i < texts.length; i += 50) {
    const res = await fetch(`${server.url}/memory/bulk-add`, { method: 'POST', headers, body: JSON.stringify({ items: texts.slice(i, i + 50).map((text) => ({ text })) }) });
    if (res.status !== 207) throw new Error(`bulk-add answered ${res.status}`);
  }

  timeMethod(app, 'api', 'handler (middy chain + route)');
  timeMethod(app.identity, 'principalFromApiKey', 'auth: principal from API key');
  timeMethod(app.identity, 'resolveEndUser', 'project resolver: end user');
  timeMethod(app.memories, 'query', 'service: memories.query');
  timeMethod(app.usage, 'allow', 'service: quota check');
  timeMethod(app.tenantKeys, 'forTenant', 'service: tenant keys');
  timeMethod(app.embedder, 'embed', 'service: embed query');
  timeMethod(app.vectors, 'query', 'service: vector query');
  timeMethod(app.cache, 'get', 'cache get');
  timeMethod(app.cache, 'set', 'cache set');
  timeMethod(app.cache, 'incr', 'cache incr');

  const queries = syntheticQueries(queryCount, 11);
  const perStep = new Map<string, number[]>();
  const statementCounts: number[] = [];
  const perStatement = new Map<string, number[]>();
  const http: number[] = [];
  const userId = await app.identity.resolveEndUser(tenantId, 'bench-user');
  for (const [i, query] of queries.entries()) {
    spans = [];
    statements.length = 0;
    const t = performance.now();
    const res = await fetch(`${server.url}/memory/query`, { method: 'POST', headers, body: JSON.stringify({ query, k: 10 }) });
    if (res.status !== 200) throw new Error(`query answered ${res.status}`);
    await res.arrayBuffer();
    const total = performance.now() - t;
    const sums = new Map<string, number>();
    for (const s of spans) sums.set(s.name, (sums.get(s.name) ?? 0) + s.ms);
    sums.set('client: fetch round trip', total);
    if (i >= 5) {
      // the first few warm caches and JIT
      for (const [k, v] of sums) perStep.set(k, [...(perStep.get(k) ?? []), v]);
      for (const [n, s] of statements.entries()) perStatement.set(`${n + 1}. ${s.sql.slice(0, 60)}`, [...(perStatement.get(`${n + 1}. ${s.sql.slice(0, 60)}`) ?? []), s.ms]);
      http.push(total);
      statementCounts.push(statements.length);
    }
    if (i === queries.length - 1) {
      process.stdout.write(`\nStatements of the last query (${statements.length}):\n${statements.map((s) => `  ${fmt(s.ms, 2).padStart(6)} ms  ${s.sql}`).join('\n')}\n`);
    }
  }
  spans = null;

  const [vector] = await app.embedder.embed([queries[0]]);
  const bare: number[] = [];
  for (let i = 0; i < queryCount; i++) {
    const t = performance.now();
    await app.vectors.query(namespaceForUser(userId), vector, { k: 10 });
    bare.push(performance.now() - t);
  }
  const rows = [...perStep.entries()].map(([name, values]) => [name, fmt(percentile(values, 50), 2), fmt(percentile(values, 95), 2)]);
  rows.push(['bare vector query (k=10, same data)', fmt(percentile(bare, 50), 2), fmt(percentile(bare, 95), 2)]);
  for (const [name, values] of perStatement) rows.push([`  stmt ${name}`, fmt(percentile(values, 50), 2), fmt(percentile(values, 95), 2)]);
  rows.push(['statements per query (median)', String(percentile(statementCounts, 50)), String(percentile(statementCounts, 95))]);
  process.stdout.write(`${table(`POST /memory/query breakdown, ${memories} memories, ${queries.length - 5} queries (ms)`, ['step', 'p50', 'p95'], rows)}\n`);
} finally {
  await server.stop();
}
