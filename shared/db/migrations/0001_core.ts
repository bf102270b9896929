import { sql, type Kysely } from 'kysely';

/** Core schema: tenants, accounts and end users, projects, keys, sessions, memories, audit, outbox. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('plan', 'text', (c) => c.notNull().defaultTo('free'))
    .addColumn('quota_mode', 'text', (c) => c.notNull().defaultTo('silent'))
    .addColumn('data_key_wrapped', 'bytea')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('public_id', 'text', (c) => c.notNull().unique())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull()) // 'account' (logs in) | 'end_user' (owns memories)
    .addColumn('external_id', 'text', (c) => c.unique()) // "{tenant_id}:{end_user_id}" for end users
    .addColumn('email', 'text', (c) => c.unique())
    .addColumn('password_hash', 'text')
    .addColumn('full_name', 'text')
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('user'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('users_tenant_idx').on('users').columns(['tenant_id', 'kind']).execute();

  await db.schema
    .createTable('projects')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('is_default', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('memory_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('projects_tenant_idx').on('projects').column('tenant_id').execute();
  await sql`create unique index projects_one_default on projects (tenant_id) where is_default`.execute(db);

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull().defaultTo('production'))
    .addColumn('scopes', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('project_id', 'text', (c) => c.references('projects.id').onDelete('set null'))
    .addColumn('rate_limit_tier', 'text', (c) => c.notNull().defaultTo('unlimited'))
    .addColumn('created_by', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_keys_tenant_idx').on('api_keys').column('tenant_id').execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('family_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('session_type', 'text', (c) => c.notNull().defaultTo('web'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('refresh_tokens_family_idx').on('refresh_tokens').column('family_id').execute();
  await db.schema.createIndex('refresh_tokens_session_idx').on('refresh_tokens').column('session_id').execute();

  await db.schema
    .createTable('memories')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('project_id', 'text', (c) => c.references('projects.id').onDelete('set null'))
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('environment', 'text', (c) => c.notNull().defaultTo('production'))
    .addColumn('text_ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    // equal to content_hash when the write asked for deduplication; a unique index makes racing twins impossible
    .addColumn('dedupe_key', 'text')
    .addColumn('lexical_tokens', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('summary_ciphertext', 'bytea')
    .addColumn('key_points', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('tags', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('source', 'text')
    .addColumn('event_type', 'text')
    .addColumn('memory_type', 'text', (c) => c.notNull().defaultTo('fact'))
    .addColumn('importance', 'real', (c) => c.notNull().defaultTo(0.5))
    .addColumn('quality_score', 'real', (c) => c.notNull().defaultTo(0.5))
    .addColumn('tier', 'text', (c) => c.notNull().defaultTo('hot'))
    .addColumn('retention_status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('is_summary', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('metadata', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('idempotency_key', 'text')
    .addColumn('embedding_status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('embedding_model', 'text')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('last_accessed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('archive_at', 'timestamptz')
    .addColumn('retention_expires_at', 'timestamptz')
    .addColumn('hard_delete_at', 'timestamptz')
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index memories_owner_recent on memories (tenant_id, user_id, created_at desc, id desc)`.execute(db);
  await sql`create unique index memories_dedupe on memories (tenant_id, user_id, dedupe_key) where dedupe_key is not null`.execute(db);
  await sql`create index memories_content_hash on memories (tenant_id, user_id, content_hash)`.execute(db);
  await sql`create unique index memories_idempotency on memories (tenant_id, user_id, idempotency_key) where idempotency_key is not null`.execute(db);
  await sql`create index memories_lexical on memories using gin (lexical_tokens)`.execute(db);
  await sql`create index memories_pending on memories (embedding_status) where embedding_status <> 'ready'`.execute(db);

  await db.schema
    .createTable('memory_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('memory_id', 'bigint', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('memory_events_memory_idx').on('memory_events').columns(['tenant_id', 'memory_id']).execute();

  await db.schema
    .createTable('audit_logs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text') // null for unauthenticated failures
    .addColumn('user_id', 'integer')
    .addColumn('principal', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text')
    .addColumn('resource_id', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('ip_address', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('request_id', 'text')
    .addColumn('payload_json', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index audit_logs_tenant_time on audit_logs (tenant_id, created_at desc, id desc)`.execute(db);
  await db.schema.createIndex('audit_logs_request_idx').on('audit_logs').column('request_id').execute();

  await db.schema
    .createTable('outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('task_id', 'text', (c) => c.notNull().unique())
    .addColumn('family', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('relayed_at', 'timestamptz')
    .addColumn('relay_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`create index outbox_unrelayed on outbox (created_at) where relayed_at is null`.execute(db);

  // Idempotency ledger of worker handlers: a task id runs to completion at most once.
  await db.schema
    .createTable('processed_tasks')
    .addColumn('task_id', 'text', (c) => c.primaryKey())
    .addColumn('family', 'text', (c) => c.notNull())
    .addColumn('processed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('usage_counters')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('period', 'text', (c) => c.notNull()) // YYYY-MM
    .addColumn('adds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('queries', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('usage_counters_pk', ['tenant_id', 'period'])
    .execute();

  // Scheduler leases: at most one run of a job at a time, fenced by a monotonically increasing token.
  await db.schema
    .createTable('job_leases')
    .addColumn('job', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text')
    .addColumn('fencing_token', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('last_started_at', 'timestamptz')
    .addColumn('last_finished_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'job_leases', 'usage_counters', 'processed_tasks', 'outbox', 'audit_logs', 'memory_events',
    'memories', 'refresh_tokens', 'api_keys', 'projects', 'users', 'tenants',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
