import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { createPgvectorStore } from '#shared/adapters/pgvector/pgvector-store.ts';
import { vectorStoreContract } from './vector-store.ts';

vectorStoreContract('pgvector on PGlite', async () => {
  const db = await openPgliteDb();
  return { store: createPgvectorStore({ db: db.kysely }), cleanup: () => db.close() };
});
