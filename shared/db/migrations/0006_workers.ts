import { sql, type Kysely } from 'kysely';

/**
 * The workers' own state: resumable reindex runs, per-project retention policies, and the
 * intelligence worker's precomputed views (near-duplicate clusters and detected decisions). The
 * precomputed tables hold ids and numbers only, never memory text.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('reindex_runs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    // null = every tenant; user_id / project_id narrow the run further
    .addColumn('tenant_id', 'text')
    .addColumn('project_id', 'text')
    .addColumn('user_id', 'integer')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('running'))
    // memories.id of the last row of the last completed batch: a resumed run continues after it
    .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('batches', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('embedding_model', 'text')
    .addColumn('last_error', 'text')
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await sql`create index reindex_runs_scope on reindex_runs (status, id desc)`.execute(db);

  await db.schema
    .createTable('retention_policies')
    .addColumn('project_id', 'text', (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    // memories older than this (by created_at) are soft-deleted by the retention sweep; null = no age limit
    .addColumn('max_age_days', 'integer')
    // days a soft-deleted memory of this project stays restorable before it is purged
    .addColumn('grace_days', 'integer', (c) => c.notNull().defaultTo(7))
    .addColumn('updated_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index retention_policies_tenant on retention_policies (tenant_id)`.execute(db);

  await db.schema
    .createTable('memory_clusters')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('memory_id', 'bigint', (c) => c.notNull().references('memories.id').onDelete('cascade'))
    // the seed memory of the cluster (its most important member); clusters are keyed by it
    .addColumn('cluster_seed_id', 'bigint', (c) => c.notNull())
    .addColumn('similarity', 'real', (c) => c.notNull())
    .addColumn('near_duplicate', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('computed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('memory_clusters_pk', ['memory_id'])
    .execute();
  await sql`create index memory_clusters_owner on memory_clusters (tenant_id, user_id, cluster_seed_id)`.execute(db);

  await db.schema
    .createTable('memory_decisions')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('memory_id', 'bigint', (c) => c.notNull().references('memories.id').onDelete('cascade'))
    .addColumn('confidence', 'real', (c) => c.notNull())
    // which detector fired: memory_type (extraction said decision) or cue (decision wording)
    .addColumn('signal', 'text', (c) => c.notNull())
    .addColumn('detected_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('memory_decisions_pk', ['memory_id'])
    .execute();
  await sql`create index memory_decisions_owner on memory_decisions (tenant_id, user_id, detected_at desc)`.execute(db);

  // When the intelligence worker last decayed a memory's importance: decay is applied for the time since, once.
  await db.schema.alterTable('memories').addColumn('importance_decayed_at', 'timestamptz').execute();

  // The sweeps select by these; without them every run scans every memory.
  await sql`create index if not exists memories_expires_at on memories (expires_at) where expires_at is not null`.execute(db);
  await sql`create index if not exists memories_hard_delete_at on memories (hard_delete_at) where hard_delete_at is not null`.execute(db);
  await sql`create index if not exists memories_last_accessed on memories (tenant_id, last_accessed_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists memories_last_accessed`.execute(db);
  await sql`drop index if exists memories_hard_delete_at`.execute(db);
  await sql`drop index if exists memories_expires_at`.execute(db);
  await db.schema.alterTable('memories').dropColumn('importance_decayed_at').execute();
  await db.schema.dropTable('memory_decisions').ifExists().execute();
  await db.schema.dropTable('memory_clusters').ifExists().execute();
  await db.schema.dropTable('retention_policies').ifExists().execute();
  await db.schema.dropTable('reindex_runs').ifExists().execute();
}
