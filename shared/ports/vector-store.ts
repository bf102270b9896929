import type { RawBuilder } from 'kysely';

/**
 * Vector index port. Every call names a namespace (one per end user); there is no call that can
 * search or delete across namespaces, so a query physically cannot reach another user's vectors.
 */
export type Tier = 'hot' | 'warm' | 'cold';
export type RetentionStatus = 'active' | 'archived' | 'soft_deleted' | 'hard_delete_pending' | 'purged';

/** Metadata stored beside each vector; used for filtering inside the index. */
export interface VectorMetadata {
  tier: Tier;
  retentionStatus: RetentionStatus;
  environment: string;
  projectId: string | null;
  tags: string[];
  source: string | null;
}

export interface VectorRecord {
  memoryId: number;
  vector: number[];
  metadata: VectorMetadata;
}

/** Filters are conjunctive; array fields match when any value matches. */
export interface VectorFilter {
  memoryIds?: number[];
  tiers?: Tier[];
  retentionStatus?: RetentionStatus[];
  environment?: string;
  /** `null` selects rows without a project; `undefined` does not filter. */
  projectId?: string | null;
  tagsAny?: string[];
  sources?: string[];
}

/** The records of one namespace in a multi-namespace write. */
export interface VectorUpsertGroup {
  namespace: string;
  records: VectorRecord[];
}

export interface VectorHit {
  memoryId: number;
  /** cosine similarity in [-1, 1] */
  score: number;
}

export interface VectorQuery {
  k: number;
  filter?: VectorFilter;
  /** exact (brute force) search instead of the approximate index; used to measure ANN recall */
  exact?: boolean;
}

/** One row of a search run inside a larger statement (see VectorStore.queryJoined). */
export interface VectorHitRow {
  memory_id: number;
  /** cosine similarity in [-1, 1] */
  score: number;
}

export interface VectorStore {
  readonly kind: string;
  /** Creates indexes/tables for vectors of `dimension`; idempotent. */
  open(dimension: number): Promise<void>;
  upsert(namespace: string, records: VectorRecord[]): Promise<void>;
  /**
   * The same as one `upsert` per group, in as few round trips as the store allows (one statement or
   * one bulk request per chunk of records): the write path of batch embedding and reindex. A memory
   * id given twice for one namespace keeps its last record.
   */
  upsertMany(groups: VectorUpsertGroup[]): Promise<void>;
  query(namespace: string, vector: number[], query: VectorQuery): Promise<VectorHit[]>;
  /**
   * Only stores that live in the primary database (pgvector, pg-array): the search as a SELECT of
   * (memory_id, score), handed to `build`, which returns the whole statement to run (joining the
   * memories table, say); the store runs it under its own search settings. One round trip instead of
   * a search and then a fetch. Failures are DependencyError('vector-store'), as for `query`.
   */
  queryJoined?<R>(namespace: string, vector: number[], query: VectorQuery, build: (hits: RawBuilder<VectorHitRow>) => RawBuilder<R>): Promise<R[]>;
  /** Updates metadata of existing vectors without touching the vectors. */
  updateMetadata(namespace: string, memoryId: number, metadata: Partial<VectorMetadata>): Promise<void>;
  delete(namespace: string, memoryIds: number[]): Promise<number>;
  deleteNamespace(namespace: string): Promise<number>;
  count(namespace: string): Promise<number>;
  /** memory ids present in the namespace (for invariants checks and reindex verification) */
  listIds(namespace: string): Promise<number[]>;
  /**
   * The stored vectors of these memories in the namespace, by memory id; ids without a vector are
   * absent from the map. Vectors come back as stored — an adapter may keep them unit-normalised —
   * so compare them by cosine, not by raw dot product or equality.
   */
  getVectors(namespace: string, memoryIds: number[]): Promise<Map<number, number[]>>;
  health(): Promise<boolean>;
  close(): Promise<void>;
}

/** The namespace of one end user; the OpenSearch index-per-user mode uses it as the index name. */
export const namespaceForUser = (userId: number | string): string => `memorysync-user-${userId}`;
