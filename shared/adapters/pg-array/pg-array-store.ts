import { sql, type Kysely, type RawBuilder } from 'kysely';
import { DependencyError } from '../../errors.ts';
import { upsertChunks, vectorDigits, vectorErrors, vectorFilterSql, vectorMetadataSets } from '../pg-common/vector-sql.ts';
import type { VectorHit, VectorHitRow, VectorMetadata, VectorQuery, VectorRecord, VectorStore, VectorUpsertGroup } from '../../ports/vector-store.ts';

export interface PgArrayStoreOptions {
  db: Kysely<any>;
  table?: string;
}

/**
 * Vectors in a plain `real[]` column for a PostgreSQL without pgvector. Search is exact: the dot
 * product of unit vectors (= cosine) computed in SQL over the namespace's rows only. That is linear
 * in the namespace size — fine for thousands of memories per user, not for millions (use pgvector
 * or OpenSearch there). Every statement is filtered by namespace.
 */
export function createPgArrayStore(options: PgArrayStoreOptions): VectorStore {
  const db = options.db;
  const tableName = options.table ?? 'memory_vectors_array';
  const table = sql.table(tableName);
  let dims = 0;

  const wrap = vectorErrors('pg-array');
  const normalize = (v: number[]) => {
    const n = Math.hypot(...v) || 1;
    return v.map((x) => x / n);
  };

  const queryJoined = async <R>(namespace: string, vector: number[], query: VectorQuery, build: (hits: RawBuilder<VectorHitRow>) => RawBuilder<R>): Promise<R[]> =>
    wrap('query', async () => {
      const q = normalize(vector);
      const hits = sql<VectorHitRow>`
        select memory_id, (select sum(a * b) from unnest(embedding, ${q}::real[]) as t(a, b)) as score
        from ${table} where ${vectorFilterSql(namespace, query.filter)}
        order by score desc, memory_id desc limit ${query.k}`;
      return (await build(hits).execute(db)).rows;
    });

  const store: VectorStore = {
    kind: 'pg-array',
    async open(dimension: number) {
      await wrap('open', async () => {
        await sql`create table if not exists ${table} (
          namespace text not null, memory_id bigint not null, embedding real[] not null, dims int not null,
          tier text not null default 'hot', retention_status text not null default 'active',
          environment text not null default 'production', project_id text, tags text[] not null default '{}', source text,
          primary key (namespace, memory_id))`.execute(db);
        // The table's dimension is recorded as its comment on first open, so a model change is caught even when empty.
        const existing = await sql<{ note: string | null }>`select obj_description(to_regclass(${tableName}), 'pg_class') as note`.execute(db);
        const stored = existing.rows[0]?.note?.match(/^dims=(\d+)$/)?.[1];
        if (stored === undefined) await sql.raw(`comment on table ${tableName} is 'dims=${dimension}'`).execute(db);
        else if (Number(stored) !== dimension) {
          throw new DependencyError('vector-store', `${tableName} holds ${stored}-d vectors but the embedder makes ${dimension}-d ones; run \`memorysync reindex --rebuild\``);
        }
        dims = dimension;
      });
    },
    async upsert(namespace: string, records: VectorRecord[]) {
      await store.upsertMany([{ namespace, records }]);
    },
    async upsertMany(groups: VectorUpsertGroup[]) {
      const chunks = upsertChunks(groups);
      if (!chunks.length) return;
      await wrap('upsert', async () => {
        for (const chunk of chunks) {
          // the array literal is built here ("{0.1,…}", one text parameter) instead of by the driver, element by element
          const rows = chunk.map(({ namespace, record: r }) => sql`(${namespace}, ${r.memoryId}, ${`{${vectorDigits(normalize(r.vector))}}`}::real[], ${dims || r.vector.length}, ${r.metadata.tier},
            ${r.metadata.retentionStatus}, ${r.metadata.environment}, ${r.metadata.projectId}, ${r.metadata.tags}::text[], ${r.metadata.source})`);
          await sql`insert into ${table} (namespace, memory_id, embedding, dims, tier, retention_status, environment, project_id, tags, source)
            values ${sql.join(rows)}
            on conflict (namespace, memory_id) do update set embedding = excluded.embedding, tier = excluded.tier,
              retention_status = excluded.retention_status, environment = excluded.environment, project_id = excluded.project_id,
              tags = excluded.tags, source = excluded.source`.execute(db);
        }
      });
    },
    async query(namespace: string, vector: number[], query: VectorQuery): Promise<VectorHit[]> {
      const rows = await queryJoined(namespace, vector, query, (hits) => hits);
      return rows.map((x) => ({ memoryId: Number(x.memory_id), score: Number(x.score) }));
    },
    queryJoined,
    async updateMetadata(namespace: string, memoryId: number, m: Partial<VectorMetadata>) {
      const sets = vectorMetadataSets(m);
      if (!sets.length) return;
      await wrap('update', async () => {
        await sql`update ${table} set ${sql.join(sets)} where namespace = ${namespace} and memory_id = ${memoryId}`.execute(db);
      });
    },
    async delete(namespace: string, memoryIds: number[]) {
      if (!memoryIds.length) return 0;
      return wrap('delete', async () => Number((await sql`delete from ${table} where namespace = ${namespace} and memory_id = any(${memoryIds}::bigint[])`.execute(db)).numAffectedRows ?? 0));
    },
    async deleteNamespace(namespace: string) {
      return wrap('delete', async () => Number((await sql`delete from ${table} where namespace = ${namespace}`.execute(db)).numAffectedRows ?? 0));
    },
    async count(namespace: string) {
      return wrap('count', async () => Number((await sql<{ n: number }>`select count(*)::int as n from ${table} where namespace = ${namespace}`.execute(db)).rows[0]?.n ?? 0));
    },
    async listIds(namespace: string) {
      return wrap('list', async () => (await sql<{ memory_id: number }>`select memory_id from ${table} where namespace = ${namespace} order by memory_id`.execute(db)).rows.map((x) => Number(x.memory_id)));
    },
    async getVectors(namespace: string, memoryIds: number[]) {
      if (!memoryIds.length) return new Map<number, number[]>();
      return wrap('get', async () => {
        const r = await sql<{ memory_id: number | string; v: string }>`select memory_id, array_to_json(embedding)::text as v from ${table} where namespace = ${namespace} and memory_id = any(${memoryIds}::bigint[])`.execute(db);
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
    async close() {},
  };
  return store;
}
