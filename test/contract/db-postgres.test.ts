import { openPostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { freshSchema } from '../support/pg-schema.ts';
import { dbContract } from './db.ts';

dbContract('PostgreSQL server', async () => {
  const schema = await freshSchema('db');
  return { db: await openPostgresDb({ connectionString: schema.url, enableVector: false }), cleanup: schema.drop };
});
