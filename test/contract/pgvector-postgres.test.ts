import { describe, it } from 'vitest';
import { openPostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { createPgvectorStore } from '#shared/adapters/pgvector/pgvector-store.ts';
import { freshSchema, PG_URL } from '../support/pg-schema.ts';
import { vectorStoreContract } from './vector-store.ts';
import pg from 'pg';

// The suite runs where the server has the extension (Aurora, the LocalStack compose database); this
// machine's PostgreSQL 15 has no pgvector package, so here it reports itself as skipped.
const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
const available = (await client.query(`select 1 from pg_available_extensions where name = 'vector'`)).rowCount === 1;
await client.end();

if (available) {
  vectorStoreContract('pgvector on the PostgreSQL server', async () => {
    const schema = await freshSchema('pgv');
    const db = await openPostgresDb({ connectionString: schema.url });
    return { store: createPgvectorStore({ db: db.kysely }), cleanup: async () => { await db.close(); await schema.drop(); } };
  });
} else {
  describe('VectorStore contract: pgvector on the PostgreSQL server', () => {
    it.skip('needs the pgvector extension, which this server does not have', () => {});
  });
}
