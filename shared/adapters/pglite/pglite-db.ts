import { mkdirSync, readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { Kysely, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import type { Database } from '../../db/schema.ts';
import type { Db } from '../../ports/db.ts';

export interface PgliteDbOptions {
  /** folder that holds the database files; omit for an in-memory database (tests) */
  dataDir?: string;
  /**
   * A `dumpDataDir()` tarball to start an in-memory database from (already initialised, extension
   * created, schema migrated): several times faster than a fresh PGlite. Used by the test suite.
   */
  templatePath?: string;
}

/**
 * Embedded PostgreSQL (WASM) with pgvector. One connection, so the dialect serialises queries;
 * that is correct (transactions never interleave) and fast enough for a single local process.
 */
export async function openPgliteDb(options: PgliteDbOptions = {}): Promise<Db> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const loadDataDir = !options.dataDir && options.templatePath ? new Blob([readFileSync(options.templatePath)]) : undefined;
  const client = await PGlite.create({ dataDir: options.dataDir, extensions: { vector }, loadDataDir,
    parsers: { 20: (v: string) => Number(v) },
  });
  await client.exec('create extension if not exists vector');
  const kysely = new Kysely<Database>({ dialect: new PGliteDialect(client) });
  let closed = false;
  return {
    kind: 'pglite',
    kysely,
    hasVector: true,
    async health() {
      if (closed) return false;
      await sql`select 1`.execute(kysely);
      return true;
    },
    /** the database files as a tarball (test templates, backups of the embedded database) */
    dump: () => client.dumpDataDir('none') as Promise<Blob>,
    async close() {
      if (closed) return;
      closed = true;
      await kysely.destroy();
    },
  };
}
