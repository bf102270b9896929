import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { dbContract } from './db.ts';

dbContract('PGlite (embedded)', async () => ({ db: await openPgliteDb() }));
