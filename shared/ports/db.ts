import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

/**
 * The source of truth. Adapters (PGlite, PostgreSQL server) differ only in how they connect;
 * every query is kysely over the same schema. `withVector` tells whether pgvector is installed.
 */
export interface Db {
  readonly kind: 'pglite' | 'postgres';
  readonly kysely: Kysely<Database>;
  /** true when the pgvector extension is available on this database */
  readonly hasVector: boolean;
  health(): Promise<boolean>;
  /** PGlite only: the data dir as a tarball */
  dump?(): Promise<Blob>;
  close(): Promise<void>;
}
