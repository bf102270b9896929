import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Db } from '#shared/ports/db.ts';

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface IsolatedPostgres {
  /** the fresh database; open more pools on it to race them */
  connectionString: string;
  openDb(): Promise<Db>;
  /** drops the database */
  drop(): Promise<void>;
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * A migrated database of its own on the machine's PostgreSQL. A database rather than a schema:
 * kysely's Migrator, without `migrationTableSchema`, takes a `kysely_migration` table in ANY schema
 * for its own, so migrating a fresh schema while another test file's schema exists fails at random.
 */
export async function createIsolatedPostgres(prefix: string): Promise<IsolatedPostgres> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const connectionString = url.toString();
  // Generous timeouts: test files share two busy cores with PGlite instances and servers.
  const openDb = () => openPostgresDb({ connectionString, enableVector: false, connectionTimeoutMs: 15_000, statementTimeoutMs: 60_000 });
  const drop = () => adminQuery(`drop database if exists "${name}" with (force)`);
  try {
    const migrating = await openDb();
    try {
      await migrateToLatest(migrating.kysely);
    } finally {
      await migrating.close();
    }
  } catch (error) {
    await drop();
    throw error;
  }
  return { connectionString, openDb, drop };
}
