import { openPostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { createPgArrayStore } from '#shared/adapters/pg-array/pg-array-store.ts';
import { freshSchema } from '../support/pg-schema.ts';
import { vectorStoreContract } from './vector-store.ts';

vectorStoreContract('pg-array on the PostgreSQL server (no pgvector)', async () => {
  const schema = await freshSchema('vec');
  const db = await openPostgresDb({ connectionString: schema.url, enableVector: false });
  return { store: createPgArrayStore({ db: db.kysely }), cleanup: async () => { await db.close(); await schema.drop(); } };
});
