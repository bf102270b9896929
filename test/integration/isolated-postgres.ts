import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Db } from '#shared/ports/db.ts';

const baseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface IsolatedPostgres {
  /** a connection string whose search_path is the fresh schema; open more pools on it to race them */
  connectionString: string;
  openDb(): Promise<Db>;
  /** drops the schema and everything in it */
  drop(): Promise<void>;
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * A migrated schema of its own on the machine's PostgreSQL, so test files can run in parallel
 * against one server without seeing each other's rows.
 */
export async function createIsolatedPostgres(prefix: string): Promise<IsolatedPostgres> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create schema "${schema}"`);
  const connectionString = `${baseUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const openDb = () => openPostgresDb({ connectionString, enableVector: false });
  const migrating = await openDb();
  try {
    await migrateToLatest(migrating.kysely);
  } finally {
    await migrating.close();
  }
  return {
    connectionString,
    openDb,
    drop: () => adminQuery(`drop schema "${schema}" cascade`),
  };
}
