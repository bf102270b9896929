import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { createPgArrayStore } from '#shared/adapters/pg-array/pg-array-store.ts';
import { vectorStoreContract } from './vector-store.ts';

vectorStoreContract('pg-array on PGlite', async () => {
  const db = await openPgliteDb();
  return { store: createPgArrayStore({ db: db.kysely }), cleanup: () => db.close() };
});
