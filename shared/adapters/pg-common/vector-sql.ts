import { sql, type RawBuilder } from 'kysely';
import { DependencyError } from '../../errors.ts';
import type { VectorFilter, VectorMetadata, VectorRecord, VectorUpsertGroup } from '../../ports/vector-store.ts';

/**
 * The WHERE clause of every vector statement in PostgreSQL (pgvector and pg-array): the namespace
 * always comes first, so no statement built here can reach another user's vectors.
 */
export function vectorFilterSql(namespace: string, filter: VectorFilter = {}): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [sql`namespace = ${namespace}`];
  if (filter.memoryIds) parts.push(sql`memory_id = any(${filter.memoryIds}::bigint[])`);
  if (filter.tiers) parts.push(sql`tier = any(${filter.tiers}::text[])`);
  if (filter.retentionStatus) parts.push(sql`retention_status = any(${filter.retentionStatus}::text[])`);
  if (filter.environment !== undefined) parts.push(sql`environment = ${filter.environment}`);
  if (filter.projectId === null) parts.push(sql`project_id is null`);
  else if (filter.projectId !== undefined) parts.push(sql`project_id = ${filter.projectId}`);
  if (filter.tagsAny?.length) parts.push(sql`tags && ${filter.tagsAny}::text[]`);
  if (filter.sources?.length) parts.push(sql`source = any(${filter.sources}::text[])`);
  return sql.join(parts, sql` and `);
}

/** Maps driver failures to DependencyError('vector-store') so callers degrade instead of failing. */
export function vectorErrors(kind: string) {
  return async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DependencyError) throw err;
      throw new DependencyError('vector-store', `${kind} ${what} failed`, { cause: err });
    }
  };
}

/** The SET list of a metadata update (only the given fields); empty when there is nothing to change. */
export function vectorMetadataSets(m: Partial<VectorMetadata>): RawBuilder<unknown>[] {
  const sets: RawBuilder<unknown>[] = [];
  if (m.tier !== undefined) sets.push(sql`tier = ${m.tier}`);
  if (m.retentionStatus !== undefined) sets.push(sql`retention_status = ${m.retentionStatus}`);
  if (m.environment !== undefined) sets.push(sql`environment = ${m.environment}`);
  if (m.projectId !== undefined) sets.push(sql`project_id = ${m.projectId}`);
  if (m.tags !== undefined) sets.push(sql`tags = ${m.tags}::text[]`);
  if (m.source !== undefined) sets.push(sql`source = ${m.source}`);
  return sets;
}

/** Rows per multi-row upsert statement: ≤ 10 parameters a row stays far below PostgreSQL's 65,535. */
export const UPSERT_ROWS_PER_STATEMENT = 1_000;

/**
 * The records of a multi-namespace upsert as statement-sized chunks of (namespace, record) rows.
 * A (namespace, memory id) given twice keeps its last record: one INSERT … ON CONFLICT DO UPDATE
 * cannot touch the same row twice.
 */
export function upsertChunks(groups: VectorUpsertGroup[]): Array<Array<{ namespace: string; record: VectorRecord }>> {
  const rows = new Map<string, { namespace: string; record: VectorRecord }>();
  for (const g of groups) for (const record of g.records) rows.set(`${g.namespace}\u0000${record.memoryId}`, { namespace: g.namespace, record });
  const all = [...rows.values()];
  const chunks: Array<Array<{ namespace: string; record: VectorRecord }>> = [];
  for (let i = 0; i < all.length; i += UPSERT_ROWS_PER_STATEMENT) chunks.push(all.slice(i, i + UPSERT_ROWS_PER_STATEMENT));
  return chunks;
}

/**
 * The numbers of a vector as the body of a PostgreSQL `real[]` or pgvector literal ("0.1,0.2,…"),
 * sent as one text parameter: the driver's per-element array serialisation (format, quote and escape
 * each number) cost more than the embedding itself in a reindex. Both columns store float32, and
 * nine significant digits identify every float32 exactly, so each number is written as its float32
 * value to 9 digits: shorter and ~4× faster to format than the double's shortest form, and the stored
 * values are the same (checked on 640,000 embedder and random values against PostgreSQL's parser).
 */
export function vectorDigits(v: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + Math.fround(v[i]).toPrecision(9);
  return out;
}
