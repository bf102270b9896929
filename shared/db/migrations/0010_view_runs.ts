import { sql, type Kysely } from 'kysely';

/**
 * When the intelligence worker last precomputed an end user's clusters and decisions, over which
 * memories and at which cluster threshold: the read routes serve the precomputed rows only when that
 * set is exactly the set they would compute over and nothing in it changed since (ids only, no text).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('memory_view_runs')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('computed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('cluster_threshold', 'real', (c) => c.notNull())
    // the memory ids clustered and scanned for decisions, as a JSON array of numbers
    .addColumn('memory_ids', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addPrimaryKeyConstraint('memory_view_runs_pk', ['tenant_id', 'user_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('memory_view_runs').ifExists().execute();
}
