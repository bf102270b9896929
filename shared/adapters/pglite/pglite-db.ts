import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { Kysely, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import type { Database } from '../../db/schema.ts';
import type { Db } from '../../ports/db.ts';

export interface PgliteDbOptions {
  /** folder that holds the database files; omit for an in-memory database (tests) */
  dataDir?: string;
}

/**
 * Embedded PostgreSQL (WASM) with pgvector. One connection, so the dialect serialises queries;
 * that is correct (transactions never interleave) and fast enough for a single local process.
 */
export async function openPgliteDb(options: PgliteDbOptions = {}): Promise<Db> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const client = await PGlite.create({ dataDir: options.dataDir, extensions: { vector },
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
    async close() {
      if (closed) return;
      closed = true;
      await kysely.destroy();
    },
  };
}
