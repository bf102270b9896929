import { sql, type Kysely } from 'kysely';

/**
 * Per-endpoint webhook concurrency: one row per delivery in flight to an endpoint, with an expiry so a
 * worker that crashed mid-request frees its slot by itself. Rows live for the length of one HTTP
 * attempt; nothing else reads them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webhook_inflight')
    .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_inflight_pk', ['webhook_id', 'delivery_id'])
    .execute();
  await sql`create index webhook_inflight_tenant on webhook_inflight (tenant_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_inflight').execute();
}
