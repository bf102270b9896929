import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../../db/schema.ts';
import type { Db } from '../../ports/db.ts';

// int8 columns hold ids and counters far below 2^53; read them as numbers, as PGlite is told to.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PostgresDbOptions {
  connectionString: string;
  /** pool size per process; on Lambda keep it at 1-2 and let RDS Proxy pool */
  maxConnections?: number;
  /** fail fast instead of hanging when the server is down */
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** try to `create extension vector`; false when the role may not */
  enableVector?: boolean;
}

/** A PostgreSQL server (Aurora, RDS, or the machine's own) through a `pg` pool. */
export async function openPostgresDb(options: PostgresDbOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 2000,
    statement_timeout: options.statementTimeoutMs ?? 15000,
    idleTimeoutMillis: 30000,
  });
  // A dead server emits errors on idle clients; without a listener they would crash the process.
  pool.on('error', () => {});
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let hasVector = false;
  if (options.enableVector !== false) {
    try {
      await sql`create extension if not exists vector`.execute(kysely);
      hasVector = true;
    } catch {
      hasVector = false;
    }
  }
  return {
    kind: 'postgres',
    kysely,
    hasVector,
    async health() {
      await sql`select 1`.execute(kysely);
      return true;
    },
    async close() {
      await kysely.destroy();
    },
  };
}
