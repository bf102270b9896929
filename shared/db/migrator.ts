import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m0001 from './migrations/0001_core.ts';
import * as m0002 from './migrations/0002_webhooks_siem.ts';
import * as m0004 from './migrations/0004_identity.ts';
import * as m0005 from './migrations/0005_recall.ts';
import * as m0003 from './migrations/0003_org.ts';
import * as m0006 from './migrations/0006_workers.ts';
import * as m0007 from './migrations/0007_integrations.ts';
import * as m0008 from './migrations/0008_identity_tokens.ts';
import * as m0009 from './migrations/0009_webhook_leases.ts';
import * as m0010 from './migrations/0010_view_runs.ts';

/**
 * Migrations are imported statically (not read from disk) so that the esbuild-bundled Lambda
 * carries them; files stay numbered and each exports up/down.
 */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_webhooks_siem': m0002,
  '0004_identity': m0004,
  '0005_recall': m0005,
  '0003_org': m0003,
  '0006_workers': m0006,
  '0007_integrations': m0007,
  '0008_identity_tokens': m0008,
  '0009_webhook_leases': m0009,
  '0010_view_runs': m0010,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema to the latest version; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  // Pin the bookkeeping tables to the connection's own schema: without it kysely treats a
  // kysely_migration table in ANY schema as its own, and two schemas on one server collide.
  const { rows } = await sql<{ s: string }>`select current_schema() as s`.execute(db);
  const migrator = new Migrator({ db, provider, migrationTableSchema: rows[0]?.s ?? 'public' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
