import { sql, type Kysely, type RawBuilder } from 'kysely';
import { DependencyError } from '../../errors.ts';
import { upsertChunks, vectorDigits, vectorErrors, vectorFilterSql, vectorMetadataSets } from '../pg-common/vector-sql.ts';
import type { VectorHit, VectorHitRow, VectorMetadata, VectorQuery, VectorRecord, VectorStore, VectorUpsertGroup } from '../../ports/vector-store.ts';

export interface PgvectorStoreOptions {
  /** the kysely instance of the database that holds the vectors (the same PGlite or PostgreSQL) */
  db: Kysely<any>;
  table?: string;
  /** HNSW ef_search for approximate queries (pgvector default 40) */
  efSearch?: number;
}

const toLiteral = (v: number[]): string => `[${vectorDigits(v)}]`;

/**
 * Vectors in PostgreSQL with pgvector: one table, a namespace column and an HNSW index (cosine).
 * Approximate queries enable iterative index scans (pgvector ≥ 0.8) so a namespace filter cannot
 * starve the result list; `exact` forces a sequential scan for ground truth.
 */
export function createPgvectorStore(options: PgvectorStoreOptions): VectorStore {
  const db = options.db;
  const table = sql.table(options.table ?? 'memory_vectors');
  const tableName = options.table ?? 'memory_vectors';
  const efSearch = options.efSearch ?? 100;

  const wrap = vectorErrors('pgvector');

  const queryJoined = async <R>(namespace: string, vector: number[], query: VectorQuery, build: (hits: RawBuilder<VectorHitRow>) => RawBuilder<R>): Promise<R[]> =>
    wrap('query', () =>
      db.transaction().execute(async (trx) => {
        // Transaction-local settings, in one round trip.
        if (query.exact) {
          await sql`select set_config('enable_indexscan', 'off', true)`.execute(trx);
        } else {
          await sql`select set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', ${String(Math.max(efSearch, query.k))}, true)`.execute(trx);
        }
        const literal = toLiteral(vector);
        const hits = sql<VectorHitRow>`
          select memory_id, 1 - (embedding <=> ${literal}::vector) as score
          from ${table}
          where ${vectorFilterSql(namespace, query.filter)}
          order by embedding <=> ${literal}::vector
          limit ${query.k}`;
        return (await build(hits).execute(trx)).rows;
      }),
    );

  const store: VectorStore = {
    kind: 'pgvector',
    async open(dimension: number) {
      await wrap('open', async () => {
        await sql`create extension if not exists vector`.execute(db);
        const existing = await sql<{ dims: number }>`
          select atttypmod as dims from pg_attribute
          where attrelid = to_regclass(${tableName}) and attname = 'embedding'`.execute(db);
        const dims = existing.rows[0]?.dims;
        if (dims !== undefined && dims !== dimension) {
          throw new DependencyError(
            'vector-store',
            `${tableName} holds ${dims}-d vectors but the embedder makes ${dimension}-d ones; run \`memorysync reindex --rebuild\``,
          );
        }
        await sql`create table if not exists ${table} (
          namespace text not null,
          memory_id bigint not null,
          embedding vector(${sql.raw(String(dimension))}) not null,
          tier text not null default 'hot',
          retention_status text not null default 'active',
          environment text not null default 'production',
          project_id text,
          tags text[] not null default '{}',
          source text,
          primary key (namespace, memory_id)
        )`.execute(db);
        await sql`create index if not exists ${sql.raw(`${tableName}_hnsw`)} on ${table} using hnsw (embedding vector_cosine_ops) with (m = 16, ef_construction = 64)`.execute(db);
      });
    },

    async upsert(namespace: string, records: VectorRecord[]) {
      await store.upsertMany([{ namespace, records }]);
    },

    async upsertMany(groups: VectorUpsertGroup[]) {
      const chunks = upsertChunks(groups);
      if (chunks.length === 0) return;
      await wrap('upsert', async () => {
        for (const chunk of chunks) {
          const rows = chunk.map(({ namespace, record: r }) =>
            sql`(${namespace}, ${r.memoryId}, ${toLiteral(r.vector)}::vector, ${r.metadata.tier}, ${r.metadata.retentionStatus},
                 ${r.metadata.environment}, ${r.metadata.projectId}, ${r.metadata.tags}::text[], ${r.metadata.source})`,
          );
          await sql`insert into ${table} (namespace, memory_id, embedding, tier, retention_status, environment, project_id, tags, source)
            values ${sql.join(rows)}
            on conflict (namespace, memory_id) do update set embedding = excluded.embedding, tier = excluded.tier,
              retention_status = excluded.retention_status, environment = excluded.environment,
              project_id = excluded.project_id, tags = excluded.tags, source = excluded.source`.execute(db);
        }
      });
    },

    async query(namespace: string, vector: number[], query: VectorQuery): Promise<VectorHit[]> {
      const rows = await queryJoined(namespace, vector, query, (hits) => hits);
      return rows.map((r) => ({ memoryId: Number(r.memory_id), score: Number(r.score) })).sort((a, b) => b.score - a.score);
    },

    queryJoined,

    async updateMetadata(namespace: string, memoryId: number, metadata: Partial<VectorMetadata>) {
      const sets = vectorMetadataSets(metadata);
      if (sets.length === 0) return;
      await wrap('update', async () => {
        await sql`update ${table} set ${sql.join(sets)} where namespace = ${namespace} and memory_id = ${memoryId}`.execute(db);
      });
    },

    async delete(namespace: string, memoryIds: number[]) {
      if (memoryIds.length === 0) return 0;
      return wrap('delete', async () => {
        const r = await sql`delete from ${table} where namespace = ${namespace} and memory_id = any(${memoryIds}::bigint[])`.execute(db);
        return Number(r.numAffectedRows ?? 0);
      });
    },

    async deleteNamespace(namespace: string) {
      return wrap('delete', async () => {
        const r = await sql`delete from ${table} where namespace = ${namespace}`.execute(db);
        return Number(r.numAffectedRows ?? 0);
      });
    },

    async count(namespace: string) {
      return wrap('count', async () => {
        const r = await sql<{ n: number | string }>`select count(*)::int as n from ${table} where namespace = ${namespace}`.execute(db);
        return Number(r.rows[0]?.n ?? 0);
      });
    },

    async listIds(namespace: string) {
      return wrap('list', async () => {
        const r = await sql<{ memory_id: number | string }>`select memory_id from ${table} where namespace = ${namespace} order by memory_id`.execute(db);
        return r.rows.map((x) => Number(x.memory_id));
      });
    },

    async getVectors(namespace: string, memoryIds: number[]) {
      if (memoryIds.length === 0) return new Map<number, number[]>();
      return wrap('get', async () => {
        // vector's text form is a JSON array ("[0.1,0.2,…]")
        const r = await sql<{ memory_id: number | string; v: string }>`select memory_id, embedding::text as v from ${table} where namespace = ${namespace} and memory_id = any(${memoryIds}::bigint[])`.execute(db);
        return new Map(r.rows.map((x) => [Number(x.memory_id), JSON.parse(x.v) as number[]]));
      });
    },

    async health() {
      try {
        await sql`select 1 from ${table} limit 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },

    async close() {
      // the database owns the connection
    },
  };
  return store;
}
