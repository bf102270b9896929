import { sql, type Kysely } from 'kysely';

/**
 * Pull-sync integrations and crawler jobs. Provider tokens are stored sealed with the tenant data key
 * (never in clear); `integration_items` maps each ingested chunk to its memory, which makes re-syncs
 * idempotent and lets a purge find what a connection brought in.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('integration_connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('project_id', 'text', (c) => c.references('projects.id').onDelete('cascade'))
    .addColumn('provider', 'text', (c) => c.notNull())
    // users.id of the end user the memories belong to, and the caller-facing id
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('end_user_id', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull())
    .addColumn('token_ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('options', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // active | syncing | rate_limited | error
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    // { cursor, checkpoint, pass_started_at }
    .addColumn('sync_state', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('lease_until', 'timestamptz')
    .addColumn('next_sync_at', 'timestamptz')
    .addColumn('last_sync_started_at', 'timestamptz')
    .addColumn('last_sync_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('objects_synced', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('memories_created', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index integration_connections_tenant on integration_connections (tenant_id, created_at)`.execute(db);
  await sql`create index integration_connections_due on integration_connections (next_sync_at) where next_sync_at is not null`.execute(db);

  await db.schema
    .createTable('integration_items')
    .addColumn('connection_id', 'text', (c) => c.notNull().references('integration_connections.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    // sha256 of (object id, chunk index, content hash): the idempotency key of one chunk
    .addColumn('item_key', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('chunk_index', 'integer', (c) => c.notNull())
    .addColumn('memory_id', 'bigint')
    .addColumn('synced_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('integration_items_pk', ['connection_id', 'item_key'])
    .execute();
  await sql`create index integration_items_object on integration_items (connection_id, object_id)`.execute(db);

  await db.schema
    .createTable('crawl_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('project_id', 'text', (c) => c.references('projects.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('end_user_id', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('max_pages', 'integer', (c) => c.notNull())
    // queued | running | completed | failed
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('queued'))
    .addColumn('pages_fetched', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pages_skipped', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('memories_created', 'integer', (c) => c.notNull().defaultTo(0))
    // [{ url, reason }] of refused or failed pages, capped
    .addColumn('skipped', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('last_error', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await sql`create index crawl_jobs_tenant on crawl_jobs (tenant_id, created_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('crawl_jobs').ifExists().execute();
  await db.schema.dropTable('integration_items').ifExists().execute();
  await db.schema.dropTable('integration_connections').ifExists().execute();
}
