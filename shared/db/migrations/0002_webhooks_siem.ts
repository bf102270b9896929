import { sql, type Kysely } from 'kysely';

/**
 * Outbound delivery: webhook endpoints, one delivery row per (event, endpoint) with its retry state,
 * one attempt row per HTTP try; SIEM forwarders with the audit-log cursor they have forwarded up to.
 * Secrets (signing secrets, auth header values, SIEM tokens) are sealed with the tenant's data key.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('project_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('events', 'jsonb', (c) => c.notNull())
    .addColumn('secret_ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('auth_header_name', 'text')
    .addColumn('auth_header_value_ciphertext', 'bytea')
    .addColumn('retry_config', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('signature_config', 'jsonb', (c) => c.notNull().defaultTo(sql`'{"algorithm":"sha256"}'::jsonb`))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('disabled_reason', 'text')
    .addColumn('disabled_at', 'timestamptz')
    // dead-lettered deliveries in a row; reset by a delivered one; the endpoint is disabled at the threshold
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('webhooks_tenant_idx').on('webhooks').columns(['tenant_id', 'status']).execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    // the exact body sent on every attempt, so retries and replays carry the same payload
    .addColumn('body', 'text', (c) => c.notNull())
    // pending (an attempt is queued), retrying (waits for next_attempt_at), delivered, dead_lettered
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // attempts since the delivery was created or last replayed; compared with the retry ceiling
    .addColumn('cycle_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('dead_lettered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One delivery per event and endpoint: a re-run fan-out cannot create a second one.
  await db.schema.createIndex('webhook_deliveries_event_uq').on('webhook_deliveries').columns(['webhook_id', 'event_id']).unique().execute();
  await sql`create index webhook_deliveries_hook_time on webhook_deliveries (tenant_id, webhook_id, created_at desc)`.execute(db);
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'retrying'`.execute(db);

  await db.schema
    .createTable('webhook_delivery_attempts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('delivery_id', 'text', (c) => c.notNull().references('webhook_deliveries.id').onDelete('cascade'))
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('success', 'boolean', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('webhook_delivery_attempts_delivery_uq').on('webhook_delivery_attempts').columns(['delivery_id', 'attempt']).unique().execute();

  await db.schema
    .createTable('siem_forwarders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('token_ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    // audit_logs.id up to which rows were forwarded (or dead-lettered)
    .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
    // the batch a 'forward' task is working on; at most one per forwarder keeps the order
    .addColumn('batch_id', 'text')
    .addColumn('batch_queued_at', 'timestamptz')
    .addColumn('last_success_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('forwarded_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('dead_letter_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('siem_forwarders_tenant_idx').on('siem_forwarders').column('tenant_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('siem_forwarders').ifExists().execute();
  await db.schema.dropTable('webhook_delivery_attempts').ifExists().execute();
  await db.schema.dropTable('webhook_deliveries').ifExists().execute();
  await db.schema.dropTable('webhooks').ifExists().execute();
}
