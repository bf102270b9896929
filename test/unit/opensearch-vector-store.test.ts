import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@opensearch-project/opensearch';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOpenSearchClient } from '#shared/adapters/opensearch/opensearch-client.ts';
import { createOpenSearchVectorStore, type OpenSearchVectorStoreOptions } from '#shared/adapters/opensearch/opensearch-vector-store.ts';
import { DependencyError } from '#shared/errors.ts';
import type { VectorMetadata, VectorStore } from '#shared/ports/vector-store.ts';

/*
 * OpenSearch cannot run on this machine, so the adapter is tested against request/response pairs
 * of the OpenSearch REST API written from its documentation (test/fixtures/opensearch/*.json).
 * A local HTTP server answers each request with the next expected pair and records what the
 * adapter really sent; each test asserts the exact method, path, query string and body.
 * This proves the adapter speaks the documented API; it is not an integration test.
 */

interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  ndjson?: unknown[];
}
interface Exchange {
  request: RecordedRequest;
  response: { status: number; body?: unknown };
}

const load = (file: string) =>
  (JSON.parse(readFileSync(new URL(`../fixtures/opensearch/${file}`, import.meta.url), 'utf8')) as { exchanges: Record<string, Exchange> })
    .exchanges;
const fixtures = { ...load('index-per-user.json'), ...load('shared.json'), ...load('cluster-health.json') };

let server: Server;
let client: Client;
let script: Exchange[] = [];
let received: RecordedRequest[] = [];
let receivedHeaders: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://127.0.0.1');
      const raw = Buffer.concat(chunks).toString('utf8');
      const request: RecordedRequest = { method: req.method!, path: decodeURIComponent(url.pathname), query: Object.fromEntries(url.searchParams) };
      if (raw && String(req.headers['content-type']).includes('ndjson')) request.ndjson = raw.trim().split('\n').map((l) => JSON.parse(l));
      else if (raw) request.body = JSON.parse(raw);
      received.push(request);
      receivedHeaders.push(req.headers);
      const next = script.shift();
      if (!next) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"no recorded exchange left"}');
        return;
      }
      res.writeHead(next.response.status, { 'content-type': 'application/json' });
      res.end(next.response.body === undefined || req.method === 'HEAD' ? undefined : JSON.stringify(next.response.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new Client({ node: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxRetries: 0 });
});
afterAll(async () => {
  await client?.close();
  await new Promise((resolve) => server?.close(resolve));
});
afterEach(() => {
  script = [];
  received = [];
  receivedHeaders = [];
});

/** Queues recorded exchanges; `sent()` returns what the adapter sent, to compare with `requests(...)`. */
function play(...names: string[]) {
  script.push(...names.map((n) => {
    if (!fixtures[n]) throw new Error(`no fixture ${n}`);
    return fixtures[n]!;
  }));
}
const requests = (...names: string[]) => names.map((n) => fixtures[n]!.request);

const meta = (m: Partial<VectorMetadata> = {}): VectorMetadata => ({
  tier: 'hot', retentionStatus: 'active', environment: 'production', projectId: null, tags: [], source: null, ...m,
});
const NS = 'memorysync-user-42';

async function perUserStore(extra: Partial<OpenSearchVectorStoreOptions> = {}): Promise<VectorStore> {
  const store = createOpenSearchVectorStore({ client, mode: 'index-per-user', refresh: 'wait_for', ...extra });
  play('put-index-template');
  await store.open(3);
  received = [];
  return store;
}

async function sharedStore(): Promise<VectorStore> {
  const store = createOpenSearchVectorStore({ client, mode: 'shared', engine: 'lucene' });
  play('index-exists-false', 'create-shared-index');
  await store.open(3);
  received = [];
  return store;
}

describe('opensearch vector store, index per user (recorded API pairs)', () => {
  it('installs an index template with the k-NN mapping for memorysync-user-* on open', async () => {
    const store = createOpenSearchVectorStore({ client, mode: 'index-per-user', refresh: 'wait_for' });
    play('put-index-template');
    await store.open(3);
    expect(received).toEqual(requests('put-index-template'));
  });

  it('creates the user index with knn_vector (hnsw, cosinesimil, faiss) before the first write, once', async () => {
    const store = await perUserStore();
    play('create-index', 'bulk-index', 'bulk-index');
    const records = [
      { memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta({ tags: ['work'], projectId: 'proj_a', source: 'n8n' }) },
      { memoryId: 2, vector: [0.0, 0.6, 0.8], metadata: meta({ tier: 'cold' }) },
    ];
    await store.upsert(NS, records);
    await store.upsert(NS, records);
    expect(received).toEqual(requests('create-index', 'bulk-index', 'bulk-index'));
  });

  it('treats an index created meanwhile by another instance as created', async () => {
    const store = await perUserStore();
    play('create-index-already-exists', 'bulk-index');
    await store.upsert(NS, [
      { memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta({ tags: ['work'], projectId: 'proj_a', source: 'n8n' }) },
      { memoryId: 2, vector: [0.0, 0.6, 0.8], metadata: meta({ tier: 'cold' }) },
    ]);
    expect(received).toEqual(requests('create-index-already-exists', 'bulk-index'));
  });

  it('reports a bulk item error as a DependencyError', async () => {
    const store = await perUserStore();
    play('create-index', 'bulk-index-item-error');
    const error = await store.upsert(NS, [{ memoryId: 3, vector: [1, 0, 0], metadata: meta() }]).catch((e) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error.message).toMatch(/bulk index failed for 1 of 1 vectors: mapper_parsing_exception/);
  });

  it('sends a k-NN query with every filter inside knn.filter (efficient filtering) and converts scores to cosine', async () => {
    const store = await perUserStore();
    play('knn-search-with-filter');
    const hits = await store.query(NS, [0.6, 0.8, 0.0], {
      k: 2,
      filter: { tiers: ['hot', 'warm'], retentionStatus: ['active'], environment: 'production', projectId: 'proj_a', tagsAny: ['work', 'travel'], sources: ['n8n'] },
    });
    expect(received).toEqual(requests('knn-search-with-filter'));
    // OpenSearch score (1 + cos) / 2: 1.0 → cos 1, 0.9 → cos 0.8
    expect(hits).toEqual([{ memoryId: 1, score: 1 }, { memoryId: 7, score: expect.closeTo(0.8, 10) }]);
  });

  it('filters by memory ids and by the absence of a project', async () => {
    const store = await perUserStore();
    play('knn-search-project-null');
    const hits = await store.query(NS, [0.6, 0.8, 0.0], { k: 5, filter: { memoryIds: [1, 2], projectId: null } });
    expect(received).toEqual(requests('knn-search-project-null'));
    expect(hits).toEqual([{ memoryId: 2, score: expect.closeTo(0.48, 10) }]);
  });

  it('runs an exact query as a knn_score script_score over the namespace', async () => {
    const store = await perUserStore();
    play('exact-search');
    const hits = await store.query(NS, [0.0, 0.6, 0.8], { k: 3, exact: true });
    expect(received).toEqual(requests('exact-search'));
    expect(hits.map((h) => h.memoryId)).toEqual([2, 1, 9]);
    expect(hits[2]!.score).toBeCloseTo(-0.5, 10);
  });

  it('answers no hits, a zero count and no ids for a user without an index', async () => {
    const store = await perUserStore();
    play('search-index-not-found', 'count-index-not-found');
    expect(await store.query('memorysync-user-7', [1, 0, 0], { k: 10 })).toEqual([]);
    expect(await store.count('memorysync-user-7')).toBe(0);
    expect(received).toEqual(requests('search-index-not-found', 'count-index-not-found'));
  });

  it('maps a failed search to a DependencyError naming the OpenSearch error type', async () => {
    const store = await perUserStore();
    play('search-phase-error');
    const error = await store.query(NS, [0, 0, 0], { k: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error.message).toBe('OpenSearch query failed: search_phase_execution_exception (HTTP 400)');
  });

  it('updates metadata with a partial doc and ignores a memory that is not indexed', async () => {
    const store = await perUserStore();
    play('update-metadata', 'update-metadata-missing');
    await store.updateMetadata(NS, 1, { tier: 'cold', retentionStatus: 'archived', tags: ['archived'] });
    await store.updateMetadata(NS, 99, { tier: 'warm' });
    expect(received).toEqual(requests('update-metadata', 'update-metadata-missing'));
  });

  it('deletes by bulk and counts only the vectors that existed', async () => {
    const store = await perUserStore();
    play('bulk-delete');
    expect(await store.delete(NS, [1, 99])).toBe(1);
    expect(received).toEqual(requests('bulk-delete'));
  });

  it('deletes a namespace by counting then deleting its index', async () => {
    const store = await perUserStore();
    play('count', 'delete-index');
    expect(await store.deleteNamespace(NS)).toBe(2);
    expect(received).toEqual(requests('count', 'delete-index'));
  });

  it('recreates the index on the next write after deleting the namespace', async () => {
    const store = await perUserStore();
    const records = [
      { memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta({ tags: ['work'], projectId: 'proj_a', source: 'n8n' }) },
      { memoryId: 2, vector: [0.0, 0.6, 0.8], metadata: meta({ tier: 'cold' }) },
    ];
    play('create-index', 'bulk-index', 'count', 'delete-index', 'create-index', 'bulk-index');
    await store.upsert(NS, records);
    await store.deleteNamespace(NS);
    await store.upsert(NS, records);
    expect(received.map((r) => `${r.method} ${r.path}`)).toEqual([
      `PUT /${NS}`, 'POST /_bulk', `POST /${NS}/_count`, `DELETE /${NS}`, `PUT /${NS}`, 'POST /_bulk',
    ]);
  });

  it('lists memory ids sorted, from the ids of the hits', async () => {
    const store = await perUserStore();
    play('list-ids');
    expect(await store.listIds(NS)).toEqual([2, 5]);
    expect(received).toEqual(requests('list-ids'));
  });

  it('reads vectors back with one _mget on the user index, skipping ids that are not indexed', async () => {
    const store = await perUserStore();
    play('mget');
    const got = await store.getVectors(NS, [1, 2, 9]);
    expect([...got.entries()]).toEqual([[1, [0.6, 0.8, 0.0]], [2, [0.0, 0.6, 0.8]]]);
    expect(received).toEqual(requests('mget'));
  });

  it('reads no vectors (and sends nothing for no ids) when the user has no index yet', async () => {
    const store = await perUserStore();
    expect((await store.getVectors(NS, [])).size).toBe(0);
    expect(received).toEqual([]);
    play('mget-index-not-found');
    expect((await store.getVectors('memorysync-user-7', [1])).size).toBe(0);
    expect(received).toEqual(requests('mget-index-not-found'));
  });

  it('refuses a vector of the wrong dimension and a namespace that is not a safe index name, without a request', async () => {
    const store = await perUserStore();
    await expect(store.upsert(NS, [{ memoryId: 1, vector: [1, 0], metadata: meta() }])).rejects.toThrow(/2 dimensions/);
    for (const bad of ['memorysync-user-*', 'a,b', '_all', 'Upper', '../x', 'memorysync-user-1:2', '']) {
      await expect(store.query(bad, [1, 0, 0], { k: 1 })).rejects.toThrow(/invalid namespace/);
    }
    expect(received).toEqual([]);
  });
});

describe('opensearch vector store, shared index (recorded API pairs)', () => {
  it('creates the shared index with the k-NN mapping when it does not exist', async () => {
    const store = createOpenSearchVectorStore({ client, mode: 'shared', engine: 'lucene' });
    play('index-exists-false', 'create-shared-index');
    await store.open(3);
    expect(received).toEqual(requests('index-exists-false', 'create-shared-index'));
  });

  it('accepts an existing index or alias whose mapping has the same dimension', async () => {
    const store = createOpenSearchVectorStore({ client, mode: 'shared', engine: 'lucene' });
    play('index-exists-true', 'get-mapping-through-alias');
    await store.open(3);
    expect(received).toEqual(requests('index-exists-true', 'get-mapping-through-alias'));
  });

  it('refuses to open over an index of another dimension', async () => {
    const store = createOpenSearchVectorStore({ client, mode: 'shared', engine: 'lucene' });
    play('index-exists-true', 'get-mapping-through-alias');
    await expect(store.open(1024)).rejects.toThrow(/holds 3-d vectors/);
  });

  it('writes documents with id namespace:memoryId and routing = namespace', async () => {
    const store = await sharedStore();
    play('bulk-index-routed');
    await store.upsert(NS, [
      { memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta() },
      { memoryId: 2, vector: [0.0, 0.6, 0.8], metadata: meta({ tags: ['home'] }) },
    ]);
    expect(received).toEqual(requests('bulk-index-routed'));
  });

  it('upsertMany writes the vectors of several namespaces in one bulk request, each routed to its namespace', async () => {
    const store = await sharedStore();
    const recorded = fixtures['bulk-index-routed']!;
    const other = 'memorysync-user-43';
    // the recorded pair for namespace 42, plus the same document for namespace 43 in the same request
    const [action, doc] = recorded.request.ndjson!.slice(0, 2) as [{ index: Record<string, string> }, Record<string, unknown>];
    const item = (recorded.response.body as { items: Array<{ index: Record<string, unknown> }> }).items[0]!;
    script.push({
      request: { ...recorded.request, ndjson: [...recorded.request.ndjson!, { index: { ...action.index, _id: `${other}:1`, routing: other } }, { ...doc, namespace: other }] },
      response: { status: 200, body: { took: 9, errors: false, items: [...(recorded.response.body as { items: unknown[] }).items, { index: { ...item.index, _id: `${other}:1`, _seq_no: 12 } }] } },
    });
    await store.upsertMany([
      { namespace: NS, records: [{ memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta() }, { memoryId: 2, vector: [0.0, 0.6, 0.8], metadata: meta({ tags: ['home'] }) }] },
      { namespace: other, records: [{ memoryId: 1, vector: [0.6, 0.8, 0.0], metadata: meta() }] },
    ]);
    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe('/_bulk');
    expect(received[0]!.ndjson).toEqual([...recorded.request.ndjson!, { index: { _index: 'memorysync-vectors', _id: `${other}:1`, routing: other } }, { ...doc, namespace: other }]);
  });

  it('routes every read to the namespace shard with the namespace term first in the filter', async () => {
    const store = await sharedStore();
    play('knn-search-routed', 'knn-search-routed-unfiltered', 'exact-search-routed', 'count-routed', 'list-ids-routed');
    expect(await store.query(NS, [0.6, 0.8, 0.0], { k: 3, filter: { tagsAny: ['home'] } })).toEqual([{ memoryId: 2, score: expect.closeTo(0.48, 10) }]);
    expect((await store.query(NS, [0.6, 0.8, 0.0], { k: 2 })).map((h) => h.memoryId)).toEqual([1, 2]);
    expect((await store.query(NS, [0.6, 0.8, 0.0], { k: 2, exact: true })).map((h) => h.memoryId)).toEqual([1, 2]);
    expect(await store.count(NS)).toBe(2);
    expect(await store.listIds(NS)).toEqual([1]);
    expect(received).toEqual(requests('knn-search-routed', 'knn-search-routed-unfiltered', 'exact-search-routed', 'count-routed', 'list-ids-routed'));
  });

  it('updates and deletes by namespaced id with routing', async () => {
    const store = await sharedStore();
    play('update-routed', 'bulk-delete-routed');
    await store.updateMetadata(NS, 2, { projectId: null, source: 'dify' });
    expect(await store.delete(NS, [2])).toBe(1);
    expect(received).toEqual(requests('update-routed', 'bulk-delete-routed'));
  });

  it('reads vectors back by namespaced id, routed to the namespace shard', async () => {
    const store = await sharedStore();
    play('mget-routed');
    expect([...(await store.getVectors(NS, [1, 2])).entries()]).toEqual([[1, [0.6, 0.8, 0.0]]]);
    expect(received).toEqual(requests('mget-routed'));
  });

  it('deletes a namespace with delete_by_query, routed and filtered by the namespace term', async () => {
    const store = await sharedStore();
    play('delete-by-query');
    expect(await store.deleteNamespace(NS)).toBe(2);
    expect(received).toEqual(requests('delete-by-query'));
  });

  it('never sends a search, count or delete-by-query without the routing and the namespace filter', async () => {
    const store = await sharedStore();
    const answer = (status: number, body: unknown): Exchange => ({ request: {} as RecordedRequest, response: { status, body } });
    const emptyHits = { hits: { hits: [] } };
    const operations: [string, () => Promise<unknown>, Exchange][] = [];
    const namespaces = ['memorysync-user-1', 'memorysync-user-2'];
    for (const ns of namespaces) {
      const filters = [undefined, {}, { memoryIds: [] }, { tagsAny: [] }, { projectId: null }, { tiers: ['hot' as const], environment: 'e' }];
      for (const filter of filters) {
        operations.push([ns, () => store.query(ns, [1, 0, 0], { k: 5, filter }), answer(200, emptyHits)]);
        operations.push([ns, () => store.query(ns, [1, 0, 0], { k: 5, filter, exact: true }), answer(200, emptyHits)]);
      }
      operations.push([ns, () => store.count(ns), answer(200, { count: 0 })]);
      operations.push([ns, () => store.listIds(ns), answer(200, emptyHits)]);
      operations.push([ns, () => store.deleteNamespace(ns), answer(200, { deleted: 0 })]);
    }
    for (const [ns, run, reply] of operations) {
      script.push(reply);
      await run();
      const request = received.at(-1)!;
      expect(request.query.routing).toBe(ns);
      const body = request.body as { query: Record<string, any> };
      const filter =
        body.query.knn?.embedding.filter.bool.filter ?? body.query.script_score?.query.bool.filter ?? body.query.bool.filter;
      expect(filter[0]).toEqual({ term: { namespace: ns } });
    }
    expect(received).toHaveLength(operations.length);
  });
});

describe('opensearch vector store health (recorded API pairs)', () => {
  it('is healthy on a green cluster and unhealthy on a red one', async () => {
    const store = createOpenSearchVectorStore({ client, mode: 'shared' });
    play('cluster-health-green', 'cluster-health-red');
    expect(await store.health()).toBe(true);
    expect(await store.health()).toBe(false);
    expect(received).toEqual(requests('cluster-health-green', 'cluster-health-red'));
  });

  it('is unhealthy when the cluster cannot be reached', async () => {
    const unreachable = new Client({ node: 'http://127.0.0.1:9', maxRetries: 0, requestTimeout: 2000 });
    expect(await createOpenSearchVectorStore({ client: unreachable, mode: 'shared' }).health()).toBe(false);
    await unreachable.close();
  });
});

describe('createOpenSearchClient', () => {
  it('signs requests with SigV4 for the given region and service, using the default credential chain', async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    const signed = createOpenSearchClient({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: 'eu-west-1', service: 'es' });
    play('cluster-health-green');
    expect(await createOpenSearchVectorStore({ client: signed, mode: 'shared' }).health()).toBe(true);
    expect(String(receivedHeaders[0]!.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/es\/aws4_request, SignedHeaders=.*host.*, Signature=[0-9a-f]{64}$/);
    expect(receivedHeaders[0]!['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    await signed.close();
  });
});
