import { sql, type Kysely } from 'kysely';

/**
 * Recall features: the refusals log (what the write path refused, never the text itself) and links
 * between memories (a summary and the memories it summarises).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('refusals')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('project_id', 'text')
    // the end user whose write was refused (users.id); kept as a plain column so the log outlives the user row
    .addColumn('user_id', 'integer')
    .addColumn('end_user_id', 'text')
    .addColumn('principal', 'text')
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    // HMAC-SHA256 of the refused text under the tenant's lexical key: repeats are visible, the text is not
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('content_length', 'integer', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index refusals_tenant_time on refusals (tenant_id, created_at desc, id desc)`.execute(db);

  await db.schema
    .createTable('memory_links')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull())
    .addColumn('from_memory_id', 'bigint', (c) => c.notNull().references('memories.id').onDelete('cascade'))
    .addColumn('to_memory_id', 'bigint', (c) => c.notNull().references('memories.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('memory_links_pk', ['from_memory_id', 'to_memory_id', 'kind'])
    .execute();
  await sql`create index memory_links_to on memory_links (to_memory_id)`.execute(db);
  await sql`create index memory_links_owner on memory_links (tenant_id, user_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('memory_links').ifExists().execute();
  await db.schema.dropTable('refusals').ifExists().execute();
}
