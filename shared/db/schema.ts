import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T> = ColumnType<T, string | T | undefined, string | T>;

export interface TenantsTable {
  id: string;
  name: string;
  status: Generated<string>;
  plan: Generated<string>;
  quota_mode: Generated<string>;
  data_key_wrapped: Uint8Array | null;
  created_at: Timestamp;
  suspended_at: NullableTimestamp;
}

export interface UsersTable {
  id: Generated<number>;
  public_id: string;
  tenant_id: string;
  kind: 'account' | 'end_user';
  external_id: string | null;
  email: string | null;
  password_hash: string | null;
  full_name: string | null;
  role: Generated<string>;
  created_at: Timestamp;
}

export interface ProjectsTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  is_default: Generated<boolean>;
  memory_count: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: Generated<number>;
  tenant_id: string;
  name: string;
  key_hash: string;
  key_prefix: string;
  environment: Generated<string>;
  scopes: Json<string[]>;
  project_id: string | null;
  rate_limit_tier: Generated<string>;
  created_by: number | null;
  created_at: Timestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  expires_at: NullableTimestamp;
}

export interface RefreshTokensTable {
  id: Generated<number>;
  session_id: string;
  family_id: string;
  user_id: number;
  tenant_id: string;
  token_hash: string;
  session_type: Generated<string>;
  expires_at: Timestamp;
  created_at: Timestamp;
  used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface MemoriesTable {
  id: Generated<number>;
  tenant_id: string;
  project_id: string | null;
  user_id: number;
  environment: Generated<string>;
  text_ciphertext: Uint8Array;
  content_hash: string;
  dedupe_key: string | null;
  lexical_tokens: ColumnType<string[], string[] | undefined, string[]>;
  summary_ciphertext: Uint8Array | null;
  key_points: Json<string[]>;
  tags: ColumnType<string[], string[] | undefined, string[]>;
  source: string | null;
  event_type: string | null;
  memory_type: Generated<string>;
  importance: Generated<number>;
  quality_score: Generated<number>;
  tier: Generated<string>;
  retention_status: Generated<string>;
  is_summary: Generated<boolean>;
  metadata: Json<Record<string, unknown>>;
  idempotency_key: string | null;
  embedding_status: Generated<string>;
  embedding_model: string | null;
  expires_at: NullableTimestamp;
  last_accessed_at: Timestamp;
  archive_at: NullableTimestamp;
  retention_expires_at: NullableTimestamp;
  hard_delete_at: NullableTimestamp;
  deleted_at: NullableTimestamp;
  /** set by the intelligence worker (migration 0006) */
  importance_decayed_at?: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MemoryEventsTable {
  id: Generated<number>;
  tenant_id: string;
  memory_id: number;
  event_type: string;
  data: Json<Record<string, unknown>>;
  created_at: Timestamp;
}

export interface AuditLogsTable {
  id: Generated<number>;
  tenant_id: string | null;
  user_id: number | null;
  principal: string | null;
  event_type: string;
  category: string;
  resource_type: string | null;
  resource_id: string | null;
  action: string;
  status: 'success' | 'failure';
  status_code: number | null;
  ip_address: string | null;
  user_agent: string | null;
  request_id: string | null;
  payload_json: Json<Record<string, unknown>>;
  created_at: Timestamp;
}

export interface OutboxTable {
  id: Generated<number>;
  task_id: string;
  family: string;
  type: string;
  tenant_id: string | null;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
  relayed_at: NullableTimestamp;
  relay_attempts: Generated<number>;
}

export interface ProcessedTasksTable {
  task_id: string;
  family: string;
  processed_at: Timestamp;
}

export interface UsageCountersTable {
  tenant_id: string;
  period: string;
  adds: Generated<number>;
  queries: Generated<number>;
}

export interface JobLeasesTable {
  job: string;
  holder: string | null;
  fencing_token: Generated<number>;
  expires_at: NullableTimestamp;
  last_started_at: NullableTimestamp;
  last_finished_at: NullableTimestamp;
}

export interface InvitationsTable {
  id: Generated<number>;
  tenant_id: string;
  email: string;
  role: string;
  token_hash: string;
  invited_by: number | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  accepted_at: NullableTimestamp;
  accepted_user_id: number | null;
  revoked_at: NullableTimestamp;
}

export interface UsageThresholdNoticesTable {
  tenant_id: string;
  period: string;
  kind: string;
  threshold: number;
  created_at: Timestamp;
}

export interface RefusalsTable {
  id: Generated<number>;
  tenant_id: string;
  project_id: string | null;
  user_id: number | null;
  end_user_id: string | null;
  principal: string | null;
  channel: string;
  reason: string;
  content_hash: string;
  content_length: number;
  request_id: string | null;
  created_at: Timestamp;
}

export interface MemoryLinksTable {
  tenant_id: string;
  user_id: number;
  from_memory_id: number;
  to_memory_id: number;
  kind: string;
  created_at: Timestamp;
}

export interface SsoProvidersTable {
  id: string;
  tenant_id: string;
  kind: string;
  name: string;
  issuer: string;
  client_id: string;
  client_secret_ciphertext: Uint8Array | null;
  scopes: Generated<string>;
  redirect_uri: string;
  default_role: Generated<string>;
  /** SAML: the IdP's single sign-on URL (HTTP-Redirect binding) */
  sso_url: string | null;
  /** SAML: the IdP's signing certificate(s), PEM */
  idp_certificate: string | null;
  created_by: number | null;
  created_at: Timestamp;
}

export interface SamlRequestsTable {
  id: string;
  provider_id: string;
  tenant_id: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface OauthTokenFamiliesTable {
  id: string;
  tenant_id: string;
  app_id: string;
  user_id: number;
  scopes: Json<string[]>;
  revoked_at: NullableTimestamp;
  revoked_reason: string | null;
  created_at: Timestamp;
}

export interface OauthRefreshTokensTable {
  token_hash: string;
  family_id: string;
  tenant_id: string;
  scopes: Json<string[]>;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface IntegrationOauthStatesTable {
  state_hash: string;
  tenant_id: string;
  provider: string;
  project_id: string;
  end_user_id: string;
  environment: string;
  options: Json<Record<string, unknown>>;
  redirect_uri: string;
  verifier_ciphertext: Uint8Array | null;
  created_by: string | null;
  created_by_account: number | null;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface OauthRevokedTokensTable {
  jti: string;
  tenant_id: string;
  app_id: string;
  expires_at: Timestamp;
  revoked_at: Timestamp;
}

export interface IdentityLinksTable {
  id: Generated<number>;
  tenant_id: string;
  provider_id: string;
  subject: string;
  user_id: number;
  created_at: Timestamp;
}

export interface OauthAppsTable {
  id: string;
  tenant_id: string;
  name: string;
  client_id: string;
  client_type: 'confidential' | 'public';
  client_secret_hash: string | null;
  redirect_uris: Json<string[]>;
  scopes: Json<string[]>;
  created_by: number | null;
  created_at: Timestamp;
}

export interface OauthCodesTable {
  code_hash: string;
  tenant_id: string;
  app_id: string;
  user_id: number;
  redirect_uri: string;
  scopes: Json<string[]>;
  code_challenge: string;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface ScimTokensTable {
  id: Generated<number>;
  tenant_id: string;
  name: string;
  token_hash: string;
  token_prefix: string;
  created_by: number | null;
  created_at: Timestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface ScimUsersTable {
  user_id: number;
  tenant_id: string;
  user_name: string;
  active: Generated<boolean>;
  attributes: Json<Record<string, unknown>>;
  version: Generated<number>;
  updated_at: Timestamp;
}

export interface GroupsTable {
  id: string;
  tenant_id: string;
  display_name: string;
  external_id: string | null;
  version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: number;
  tenant_id: string;
}

export interface WebhooksTable {
  id: string;
  tenant_id: string;
  project_id: string | null;
  name: string;
  url: string;
  description: string | null;
  events: Json<string[]>;
  secret_ciphertext: Uint8Array;
  auth_header_name: string | null;
  auth_header_value_ciphertext: Uint8Array | null;
  retry_config: Json<{ max_attempts?: number; backoff_seconds?: number }>;
  signature_config: Json<{ algorithm: string }>;
  status: Generated<string>;
  disabled_reason: string | null;
  disabled_at: NullableTimestamp;
  consecutive_failures: Generated<number>;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  event: string;
  body: string;
  status: Generated<string>;
  attempts: Generated<number>;
  cycle_attempts: Generated<number>;
  next_attempt_at: NullableTimestamp;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: NullableTimestamp;
  dead_lettered_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookDeliveryAttemptsTable {
  id: Generated<number>;
  tenant_id: string;
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  latency_ms: number;
  success: boolean;
  error: string | null;
  created_at: Timestamp;
}

/** One delivery in flight to an endpoint (per-endpoint concurrency cap); expires if its worker died. */
export interface WebhookInflightTable {
  webhook_id: string;
  delivery_id: string;
  tenant_id: string;
  expires_at: Timestamp;
}

export interface SiemForwardersTable {
  id: string;
  tenant_id: string;
  name: string;
  type: string;
  url: string;
  token_ciphertext: Uint8Array;
  enabled: Generated<boolean>;
  cursor: ColumnType<string, string | number | undefined, string | number>;
  batch_id: string | null;
  batch_queued_at: NullableTimestamp;
  last_success_at: NullableTimestamp;
  last_error: string | null;
  forwarded_count: ColumnType<string, string | number | undefined, string | number>;
  dead_letter_count: Generated<number>;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ReindexRunsTable {
  id: Generated<number>;
  tenant_id: string | null;
  project_id: string | null;
  user_id: number | null;
  status: Generated<string>;
  cursor: ColumnType<string, string | number | undefined, string | number>;
  total: Generated<number>;
  done: Generated<number>;
  batches: Generated<number>;
  embedding_model: string | null;
  last_error: string | null;
  started_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
}

export interface RetentionPoliciesTable {
  project_id: string;
  tenant_id: string;
  max_age_days: number | null;
  grace_days: Generated<number>;
  updated_by: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MemoryClustersTable {
  tenant_id: string;
  user_id: number;
  memory_id: number;
  cluster_seed_id: number;
  similarity: number;
  near_duplicate: Generated<boolean>;
  computed_at: Timestamp;
}

export interface MemoryViewRunsTable {
  tenant_id: string;
  user_id: number;
  computed_at: Timestamp;
  cluster_threshold: number;
  memory_ids: ColumnType<number[], string, string>;
}

export interface MemoryDecisionsTable {
  tenant_id: string;
  user_id: number;
  memory_id: number;
  confidence: number;
  signal: string;
  detected_at: Timestamp;
}

export interface IntegrationConnectionsTable {
  id: string;
  tenant_id: string;
  project_id: string | null;
  provider: string;
  user_id: number;
  end_user_id: string;
  environment: string;
  token_ciphertext: Uint8Array;
  /** 'token' (pasted) or 'oauth' (authorization-code flow) */
  auth_method: Generated<string>;
  refresh_token_ciphertext: Uint8Array | null;
  token_expires_at: NullableTimestamp;
  options: Json<Record<string, unknown>>;
  status: Generated<string>;
  sync_state: Json<{ cursor?: string | null; checkpoint?: string | null; pass_started_at?: string | null }>;
  lease_until: NullableTimestamp;
  next_sync_at: NullableTimestamp;
  last_sync_started_at: NullableTimestamp;
  last_sync_at: NullableTimestamp;
  last_error: string | null;
  objects_synced: Generated<number>;
  memories_created: Generated<number>;
  created_by: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IntegrationItemsTable {
  connection_id: string;
  tenant_id: string;
  item_key: string;
  object_id: string;
  chunk_index: number;
  memory_id: number | null;
  synced_at: Timestamp;
}

export interface CrawlJobsTable {
  id: string;
  tenant_id: string;
  project_id: string | null;
  user_id: number;
  end_user_id: string;
  environment: string;
  url: string;
  max_pages: number;
  status: Generated<string>;
  pages_fetched: Generated<number>;
  pages_skipped: Generated<number>;
  memories_created: Generated<number>;
  skipped: Json<Array<{ url: string; reason: string }>>;
  last_error: string | null;
  created_by: string | null;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
}

export interface Database {
  tenants: TenantsTable;
  users: UsersTable;
  projects: ProjectsTable;
  api_keys: ApiKeysTable;
  refresh_tokens: RefreshTokensTable;
  memories: MemoriesTable;
  memory_events: MemoryEventsTable;
  audit_logs: AuditLogsTable;
  outbox: OutboxTable;
  processed_tasks: ProcessedTasksTable;
  usage_counters: UsageCountersTable;
  job_leases: JobLeasesTable;
  refusals: RefusalsTable;
  memory_links: MemoryLinksTable;
  invitations: InvitationsTable;
  usage_threshold_notices: UsageThresholdNoticesTable;
  sso_providers: SsoProvidersTable;
  identity_links: IdentityLinksTable;
  oauth_apps: OauthAppsTable;
  oauth_codes: OauthCodesTable;
  saml_requests: SamlRequestsTable;
  oauth_token_families: OauthTokenFamiliesTable;
  oauth_refresh_tokens: OauthRefreshTokensTable;
  oauth_revoked_tokens: OauthRevokedTokensTable;
  integration_oauth_states: IntegrationOauthStatesTable;
  scim_tokens: ScimTokensTable;
  scim_users: ScimUsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_delivery_attempts: WebhookDeliveryAttemptsTable;
  webhook_inflight: WebhookInflightTable;
  siem_forwarders: SiemForwardersTable;
  reindex_runs: ReindexRunsTable;
  retention_policies: RetentionPoliciesTable;
  memory_clusters: MemoryClustersTable;
  memory_decisions: MemoryDecisionsTable;
  memory_view_runs: MemoryViewRunsTable;
  integration_connections: IntegrationConnectionsTable;
  integration_items: IntegrationItemsTable;
  crawl_jobs: CrawlJobsTable;
}

export type MemoryRow = Selectable<MemoriesTable>;
export type NewMemoryRow = Insertable<MemoriesTable>;
export type MemoryUpdate = Updateable<MemoriesTable>;
export type ProjectRow = Selectable<ProjectsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type UserRow = Selectable<UsersTable>;
export type TenantRow = Selectable<TenantsTable>;
