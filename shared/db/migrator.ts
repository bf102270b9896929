import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m0001 from './migrations/0001_core.ts';
import * as m0003 from './migrations/0003_org.ts';
import * as m0004 from './migrations/0004_identity.ts';

/**
 * Migrations are imported statically (not read from disk) so that the esbuild-bundled Lambda
 * carries them; files stay numbered and each exports up/down.
 */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0003_org': m0003,
  '0004_identity': m0004,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema to the latest version; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
