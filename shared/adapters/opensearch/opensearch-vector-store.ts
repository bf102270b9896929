import type { Client } from '@opensearch-project/opensearch';
import { DependencyError } from '../../errors.ts';
import type {
  VectorFilter,
  VectorHit,
  VectorMetadata,
  VectorQuery,
  VectorRecord,
  VectorStore,
  VectorUpsertGroup,
} from '../../ports/vector-store.ts';
import { knnIndexBody, VECTOR_FIELD, type KnnIndexOptions } from './opensearch-mapping.ts';

export interface OpenSearchVectorStoreOptions {
  client: Client;
  /**
   * `index-per-user`: one index per namespace (`memorysync-user-{id}`), as the seed does — simple,
   * but one index (and shard) per user does not scale to millions of users.
   * `shared`: one index, documents routed by namespace to one shard, every query filtered by it.
   */
  mode: 'index-per-user' | 'shared';
  /** index (or alias) for shared mode; default `memorysync-vectors` */
  sharedIndex?: string;
  /** default `faiss`; both support efficient filtering with HNSW */
  engine?: 'faiss' | 'lucene';
  /** refresh after writes: `wait_for` makes writes visible to the next query; default false */
  refresh?: boolean | 'wait_for';
  /** HNSW parameters; defaults m 16, ef_construction 128, ef_search 100 */
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  shards?: number;
  replicas?: number;
}

/** Index-name pattern of per-user indices; the index template in `open` applies to it. */
export const PER_USER_INDEX_PATTERN = 'memorysync-user-*';
const TEMPLATE_NAME = 'memorysync-user-vectors';
/** lowercase, no wildcard, comma, colon or leading `-_.`: safe as an index name, an id prefix and routing */
const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,199}$/;
const BULK_CHUNK = 200;
const LIST_PAGE = 1000;
/** ids per _mget request */
const GET_CHUNK = 500;

/**
 * Everything a request may touch for one namespace. Requests are built only from a scope, and
 * `scope.query()` is the only way to build a query: the namespace term is always its first
 * filter, in both modes, so no code path can send a search, count or delete-by-query that reaches
 * another user's vectors.
 */
interface NamespaceScope {
  readonly namespace: string;
  readonly index: string;
  /** shard routing (shared mode); per-user indices need none */
  readonly routing: string | undefined;
  docId(memoryId: number): string;
  query(clauses?: object[]): { bool: { filter: object[] } };
}

type Doc = Record<string, unknown>;
interface BulkItem {
  status: number;
  result?: string;
  error?: { type?: string; reason?: string };
}

/**
 * VectorStore on OpenSearch k-NN (knn_vector, HNSW, cosinesimil). Scores: OpenSearch ≥ 2.19
 * reports cosinesimil hits — approximate (faiss, lucene) and exact (knn_score script) alike — as
 * (1 + cos) / 2 in [0, 1]; the adapter converts back to cosine with 2·score − 1 so callers see the
 * same scale as pgvector. Not integration-tested against a live cluster here; see docs/adapters.md.
 */
export function createOpenSearchVectorStore(options: OpenSearchVectorStoreOptions): VectorStore {
  const { client, mode } = options;
  const sharedIndex = options.sharedIndex ?? 'memorysync-vectors';
  const refresh = options.refresh ?? false;
  /** the refresh query parameter, left out when it is false (the server default) */
  const refreshParam = refresh === false ? {} : { refresh };
  let dimension: number | undefined;
  /** per-user indices this instance has created or seen, so creation costs one request per index */
  const knownIndices = new Set<string>();

  const indexOptions = (dim: number): KnnIndexOptions => ({
    dimension: dim,
    engine: options.engine ?? 'faiss',
    m: options.m ?? 16,
    efConstruction: options.efConstruction ?? 128,
    efSearch: options.efSearch ?? 100,
    shards: options.shards,
    replicas: options.replicas,
  });

  function scope(namespace: string): NamespaceScope {
    if (!NAMESPACE_PATTERN.test(namespace) || namespace === sharedIndex) {
      throw new DependencyError('vector-store', `invalid namespace ${JSON.stringify(namespace.slice(0, 100))}`);
    }
    const shared = mode === 'shared';
    return {
      namespace,
      index: shared ? sharedIndex : namespace,
      routing: shared ? namespace : undefined,
      docId: (memoryId) => (shared ? `${namespace}:${memoryId}` : String(memoryId)),
      query: (clauses = []) => ({ bool: { filter: [{ term: { namespace } }, ...clauses] } }),
    };
  }

  function requireDimension(): number {
    if (dimension === undefined) throw new DependencyError('vector-store', 'open(dimension) must be called before use');
    return dimension;
  }

  function checkVector(vector: number[]) {
    const dim = requireDimension();
    if (vector.length !== dim) {
      throw new DependencyError('vector-store', `vector has ${vector.length} dimensions, the index holds ${dim}`);
    }
  }

  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (cause) {
      if (cause instanceof DependencyError) throw cause;
      throw new DependencyError('vector-store', `OpenSearch ${what} failed: ${describe(cause)}`, { cause });
    }
  }

  /** Creates an index; an index that already exists (another instance won the race) is fine. */
  async function createIndex(index: string, dim: number) {
    try {
      await client.indices.create({ index, body: knnIndexBody(indexOptions(dim)) as never });
    } catch (error) {
      if (errorType(error) !== 'resource_already_exists_exception') throw error;
    }
  }

  async function ensureIndex(s: NamespaceScope) {
    if (mode === 'shared' || knownIndices.has(s.index)) return;
    await createIndex(s.index, requireDimension());
    knownIndices.add(s.index);
  }

  async function bulk(what: string, body: object[]): Promise<BulkItem[]> {
    const response = await client.bulk({ body, ...refreshParam } as never);
    const result = response.body as { errors: boolean; items: Record<string, BulkItem>[] };
    const items = result.items.map((item) => Object.values(item)[0]!);
    const failed = items.filter((i) => i.error && i.status !== 404);
    if (failed.length > 0) {
      const first = failed[0]!.error!;
      throw new DependencyError(
        'vector-store',
        `OpenSearch bulk ${what} failed for ${failed.length} of ${items.length} vectors: ${first.type}: ${first.reason}`,
      );
    }
    return items;
  }

  /** Index actions of every group, in bulk requests of BULK_CHUNK vectors (namespaces mixed). */
  async function upsertMany(groups: VectorUpsertGroup[]) {
    const rows = groups.flatMap((g) => {
      const s = scope(g.namespace);
      return g.records.map((record) => ({ s, record }));
    });
    if (rows.length === 0) return;
    for (const { record } of rows) checkVector(record.vector);
    await call('upsert', async () => {
      for (const s of new Map(rows.map((r) => [r.s.index, r.s])).values()) await ensureIndex(s);
      for (let i = 0; i < rows.length; i += BULK_CHUNK) {
        const body = rows.slice(i, i + BULK_CHUNK).flatMap(({ s, record: r }) => [
          { index: { _index: s.index, _id: s.docId(r.memoryId), ...(s.routing ? { routing: s.routing } : {}) } },
          { memory_id: r.memoryId, namespace: s.namespace, [VECTOR_FIELD]: r.vector, ...metadataDoc(r.metadata) },
        ]);
        await bulk('index', body);
      }
    });
  }

  async function search(s: NamespaceScope, body: object): Promise<{ _id: string; _score: number; _source?: Doc }[]> {
    const response = await client.search({ index: s.index, routing: s.routing, body } as never, { ignore: [404] });
    if (response.statusCode === 404) return [];
    return (response.body as { hits: { hits: { _id: string; _score: number; _source?: Doc }[] } }).hits.hits;
  }

  return {
    kind: 'opensearch',

    async open(dim: number) {
      await call('open', async () => {
        if (mode === 'shared') {
          const exists = await client.indices.exists({ index: sharedIndex });
          if (exists.body) await checkSharedDimension(dim);
          else await createIndex(sharedIndex, dim);
        } else {
          // Indices are created lazily per user; the template gives the right mapping to any
          // index that appears another way (e.g. a bulk write racing a namespace delete).
          await client.indices.putIndexTemplate({
            name: TEMPLATE_NAME,
            body: { index_patterns: [PER_USER_INDEX_PATTERN], priority: 100, template: knnIndexBody(indexOptions(dim)) } as never,
          });
        }
      });
      dimension = dim;
    },

    async upsert(namespace: string, records: VectorRecord[]) {
      await upsertMany([{ namespace, records }]);
    },

    async upsertMany(groups: VectorUpsertGroup[]) {
      await upsertMany(groups);
    },

    async query(namespace: string, vector: number[], q: VectorQuery): Promise<VectorHit[]> {
      const s = scope(namespace);
      checkVector(vector);
      const k = Math.min(Math.max(0, Math.floor(q.k)), 10_000);
      if (k === 0) return [];
      const filter = s.query(filterClauses(q.filter));
      const query = q.exact
        ? {
            script_score: {
              query: filter,
              script: { source: 'knn_score', lang: 'knn', params: { field: VECTOR_FIELD, query_value: vector, space_type: 'cosinesimil' } },
            },
          }
        : { knn: { [VECTOR_FIELD]: { vector, k, filter } } };
      const hits = await call('query', () => search(s, { size: k, _source: ['memory_id'], query }));
      return hits.map((h) => ({ memoryId: memoryIdOf(h), score: cosineFromScore(h._score) }));
    },

    async updateMetadata(namespace: string, memoryId: number, metadata: Partial<VectorMetadata>) {
      const s = scope(namespace);
      const doc = metadataDoc(metadata);
      if (Object.keys(doc).length === 0) return;
      await call('updateMetadata', () =>
        client.update({ index: s.index, id: s.docId(memoryId), routing: s.routing, ...refreshParam, body: { doc } } as never, { ignore: [404] }),
      );
    },

    async delete(namespace: string, memoryIds: number[]): Promise<number> {
      const s = scope(namespace);
      if (memoryIds.length === 0) return 0;
      return call('delete', async () => {
        let deleted = 0;
        for (let i = 0; i < memoryIds.length; i += BULK_CHUNK) {
          const body = memoryIds
            .slice(i, i + BULK_CHUNK)
            .map((id) => ({ delete: { _index: s.index, _id: s.docId(id), ...(s.routing ? { routing: s.routing } : {}) } }));
          deleted += (await bulk('delete', body)).filter((item) => item.result === 'deleted').length;
        }
        return deleted;
      });
    },

    async deleteNamespace(namespace: string): Promise<number> {
      const s = scope(namespace);
      return call('deleteNamespace', async () => {
        if (mode === 'index-per-user') {
          const count = await countIn(s);
          await client.indices.delete({ index: s.index }, { ignore: [404] });
          knownIndices.delete(s.index);
          return count;
        }
        const response = await client.deleteByQuery({
          index: s.index,
          routing: s.routing,
          // delete_by_query takes only true/false; any refresh setting means "make it visible"
          ...(refresh === false ? {} : { refresh: true }),
          conflicts: 'proceed',
          body: { query: s.query() },
        } as never);
        return (response.body as { deleted: number }).deleted;
      });
    },

    async count(namespace: string): Promise<number> {
      const s = scope(namespace);
      return call('count', () => countIn(s));
    },

    async listIds(namespace: string): Promise<number[]> {
      const s = scope(namespace);
      return call('listIds', async () => {
        const ids: number[] = [];
        let after: unknown[] | undefined;
        for (;;) {
          const hits = await search(s, {
            size: LIST_PAGE,
            _source: ['memory_id'],
            sort: [{ memory_id: 'asc' }],
            track_total_hits: false,
            query: s.query(),
            ...(after ? { search_after: after } : {}),
          });
          ids.push(...hits.map(memoryIdOf));
          if (hits.length < LIST_PAGE) return ids;
          after = [ids[ids.length - 1]];
        }
      });
    },

    async getVectors(namespace: string, memoryIds: number[]): Promise<Map<number, number[]>> {
      const s = scope(namespace);
      const found = new Map<number, number[]>();
      if (memoryIds.length === 0) return found;
      return call('getVectors', async () => {
        for (let i = 0; i < memoryIds.length; i += GET_CHUNK) {
          const ids = memoryIds.slice(i, i + GET_CHUNK).map((id) => s.docId(id));
          const response = await client.mget(
            { index: s.index, routing: s.routing, _source_includes: ['memory_id', 'namespace', VECTOR_FIELD], body: { ids } } as never,
            { ignore: [404] },
          );
          if (response.statusCode === 404) return found;
          const docs = (response.body as { docs: Array<{ _id: string; found?: boolean; error?: unknown; _source?: Doc }> }).docs;
          for (const d of docs) {
            // a missing index answers per document (index_not_found_exception): no vector
            if (!d.found || d.error || !d._source) continue;
            // shared mode: the namespaced _id already pins the owner; the stored namespace must agree
            if (d._source.namespace !== s.namespace) continue;
            const vector = d._source[VECTOR_FIELD];
            if (Array.isArray(vector)) found.set(memoryIdOf(d), vector as number[]);
          }
        }
        return found;
      });
    },

    async health(): Promise<boolean> {
      try {
        const response = await client.cluster.health({});
        return (response.body as { status?: string }).status !== 'red';
      } catch {
        return false;
      }
    },

    async close() {},
  };

  async function countIn(s: NamespaceScope): Promise<number> {
    const response = await client.count({ index: s.index, routing: s.routing, body: { query: s.query() } } as never, { ignore: [404] });
    return response.statusCode === 404 ? 0 : (response.body as { count: number }).count;
  }

  async function checkSharedDimension(dim: number) {
    const response = await client.indices.getMapping({ index: sharedIndex });
    // an alias answers with its concrete index name as the key
    const mappings = Object.values(response.body as Record<string, { mappings?: { properties?: Record<string, { dimension?: number }> } }>);
    const stored = mappings[0]?.mappings?.properties?.[VECTOR_FIELD]?.dimension;
    if (stored !== undefined && stored !== dim) {
      throw new DependencyError(
        'vector-store',
        `${sharedIndex} holds ${stored}-d vectors but the embedder makes ${dim}-d ones; reindex into a new index`,
      );
    }
  }
}

/** VectorMetadata (camelCase) → document fields (snake_case); only the fields that are set. */
function metadataDoc(m: Partial<VectorMetadata>): Doc {
  const doc: Doc = {};
  if (m.tier !== undefined) doc.tier = m.tier;
  if (m.retentionStatus !== undefined) doc.retention_status = m.retentionStatus;
  if (m.environment !== undefined) doc.environment = m.environment;
  if (m.projectId !== undefined) doc.project_id = m.projectId;
  if (m.tags !== undefined) doc.tags = m.tags;
  if (m.source !== undefined) doc.source = m.source;
  return doc;
}

/** Same semantics as the pgvector adapter: an empty id/tier/status list matches nothing, empty tags/sources do not filter. */
function filterClauses(f: VectorFilter = {}): object[] {
  const clauses: object[] = [];
  if (f.memoryIds) clauses.push({ terms: { memory_id: f.memoryIds } });
  if (f.tiers) clauses.push({ terms: { tier: f.tiers } });
  if (f.retentionStatus) clauses.push({ terms: { retention_status: f.retentionStatus } });
  if (f.environment !== undefined) clauses.push({ term: { environment: f.environment } });
  if (f.projectId === null) clauses.push({ bool: { must_not: [{ exists: { field: 'project_id' } }] } });
  else if (f.projectId !== undefined) clauses.push({ term: { project_id: f.projectId } });
  if (f.tagsAny?.length) clauses.push({ terms: { tags: f.tagsAny } });
  if (f.sources?.length) clauses.push({ terms: { source: f.sources } });
  return clauses;
}

/** OpenSearch cosinesimil score (1 + cos) / 2 → cosine similarity, clamped against float error. */
export function cosineFromScore(score: number): number {
  return Math.max(-1, Math.min(1, 2 * score - 1));
}

function memoryIdOf(hit: { _id: string; _source?: Doc }): number {
  const id = hit._source?.memory_id ?? hit._id.slice(hit._id.lastIndexOf(':') + 1);
  return Number(id);
}

function errorType(error: unknown): string | undefined {
  return (error as { meta?: { body?: { error?: { type?: string } } } })?.meta?.body?.error?.type;
}

function describe(error: unknown): string {
  const status = (error as { meta?: { statusCode?: number } })?.meta?.statusCode;
  const type = errorType(error);
  const name = error instanceof Error ? error.name : 'Error';
  return [type ?? name, status ? `(HTTP ${status})` : ''].filter(Boolean).join(' ');
}
