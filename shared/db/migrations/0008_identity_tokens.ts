import { sql, type Kysely } from 'kysely';

/**
 * SAML providers and their outstanding AuthnRequest ids; OAuth refresh-token families, rotated refresh
 * tokens and revoked access tokens; OAuth-connected integrations (refresh token and access-token expiry).
 */
export async function up(db: Kysely<any>): Promise<void> {
  // SAML providers live in sso_providers with kind 'saml': issuer = the IdP entity id, client_id = our SP
  // entity id (the audience), redirect_uri = our ACS URL; these two hold the IdP's SSO URL and signing certificate(s).
  await db.schema.alterTable('sso_providers').addColumn('sso_url', 'text').execute();
  await db.schema.alterTable('sso_providers').addColumn('idp_certificate', 'text').execute();

  // AuthnRequest ids we issued: a response must answer one of them (InResponseTo), once.
  await db.schema
    .createTable('saml_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('provider_id', 'text', (c) => c.notNull().references('sso_providers.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  await sql`create index saml_requests_expires on saml_requests (expires_at)`.execute(db);

  // One family per authorization-code grant; every refresh token of the grant belongs to it, and the
  // access tokens it issues carry its id, so revoking the family ends them all.
  await db.schema
    .createTable('oauth_token_families')
    .addColumn('id', 'text', (c) => c.primaryKey()) // otf_<hex>
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('oauth_apps.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('scopes', 'jsonb', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('oauth_refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('family_id', 'text', (c) => c.notNull().references('oauth_token_families.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('scopes', 'jsonb', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index oauth_refresh_tokens_family on oauth_refresh_tokens (family_id)`.execute(db);

  // Access tokens revoked one by one (RFC 7009) until they would have expired anyway.
  await db.schema
    .createTable('oauth_revoked_tokens')
    .addColumn('jti', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('oauth_apps.id').onDelete('cascade'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // Integrations connected through the provider's authorization-code flow (token pasting leaves these null).
  await db.schema.alterTable('integration_connections').addColumn('auth_method', 'text', (c) => c.notNull().defaultTo('token')).execute();
  await db.schema.alterTable('integration_connections').addColumn('refresh_token_ciphertext', 'bytea').execute();
  await db.schema.alterTable('integration_connections').addColumn('token_expires_at', 'timestamptz').execute();

  // A connect started through the provider's authorization page, waiting for its callback: single use,
  // bound to its tenant and provider; the PKCE verifier is sealed with the tenant's data key.
  await db.schema
    .createTable('integration_oauth_states')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id').onDelete('cascade'))
    .addColumn('end_user_id', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull())
    .addColumn('options', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('verifier_ciphertext', 'bytea')
    .addColumn('created_by', 'text')
    .addColumn('created_by_account', 'integer')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('integration_oauth_states').ifExists().execute();
  for (const c of ['token_expires_at', 'refresh_token_ciphertext', 'auth_method']) await db.schema.alterTable('integration_connections').dropColumn(c).execute();
  for (const t of ['oauth_revoked_tokens', 'oauth_refresh_tokens', 'oauth_token_families', 'saml_requests']) await db.schema.dropTable(t).ifExists().execute();
  for (const c of ['idp_certificate', 'sso_url']) await db.schema.alterTable('sso_providers').dropColumn(c).execute();
}
