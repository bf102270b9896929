import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number) => z.coerce.number().int().default(def);

/**
 * Every setting the service reads, validated once at start. The README's configuration table lists
 * each of these; names are SCREAMING_SNAKE. Unknown variables are ignored.
 */
export const configSchema = z.object({
  NODE_ENV: z.string().default('development'),
  PORT: int(8080),
  HOST: z.string().default('127.0.0.1'),
  MEMORYSYNC_DATA_DIR: z.string().default('.memorysync'),
  /** in-memory runs only (MEMORYSYNC_DATA_DIR=:memory:): start PGlite from this dumpDataDir() tarball (tests) */
  PGLITE_TEMPLATE: z.string().optional(),
  /** PostgreSQL connection string; unset = embedded PGlite under the data dir */
  DATABASE_URL: z.string().optional(),
  /** On AWS: Secrets Manager secret ({username,password}) + RDS Proxy host instead of DATABASE_URL */
  DATABASE_SECRET_ARN: z.string().optional(),
  DATABASE_HOST: z.string().optional(),
  DATABASE_PORT: int(5432),
  DATABASE_NAME: z.string().default('memorysync'),
  DATABASE_SSL: bool.default(false),
  /** connections per process (on Lambda 1-2, RDS Proxy pools) */
  DATABASE_POOL_MAX: int(10),
  /** opening one connection: past it the database is down (503 SERVICE_UNAVAILABLE) */
  DATABASE_CONNECT_TIMEOUT_MS: int(2000),
  /** waiting for a pooled connection while all are busy: past it 503 SERVICE_OVERLOADED with Retry-After */
  DATABASE_POOL_ACQUIRE_TIMEOUT_MS: int(10000),
  /** requests allowed to wait for a connection; one more gets SERVICE_OVERLOADED at once */
  DATABASE_POOL_MAX_WAITING: int(1000),
  /** auto (pgvector when the database has it, else exact search over real[]), pgvector, pg-array or opensearch */
  VECTOR_STORE: z.enum(['auto', 'pgvector', 'pg-array', 'opensearch']).default('auto'),
  OPENSEARCH_ENDPOINT: z.string().optional(),
  OPENSEARCH_NAMESPACE_MODE: z.enum(['index-per-user', 'shared']).default('index-per-user'),
  OPENSEARCH_SHARED_INDEX: z.string().default('memorysync-vectors'),
  /** redis://…; unset = in-process cache */
  REDIS_URL: z.string().optional(),
  CACHE_TTL_SECONDS: int(300),
  QUEUE: z.enum(['local', 'sqs']).default('local'),
  SQS_ENDPOINT: z.string().optional(),
  /** JSON object family → queue URL (set by CDK) */
  SQS_QUEUE_URLS: z.string().optional(),
  /** JSON object family → DLQ URL (set by CDK on the API function only): dead-letter counts and re-drive */
  SQS_DLQ_URLS: z.string().optional(),
  OBJECT_STORE: z.enum(['fs', 's3']).default('fs'),
  S3_BUCKET: z.string().optional(),
  S3_ENDPOINT: z.string().optional(),
  EMBEDDER: z.enum(['local', 'openai', 'bedrock']).default('local'),
  EMBEDDINGS_URL: z.string().optional(),
  EMBEDDINGS_MODEL: z.string().default('text-embedding-3-small'),
  EMBEDDINGS_API_KEY: z.string().optional(),
  EMBEDDINGS_DIMENSION: z.coerce.number().int().optional(),
  BEDROCK_EMBEDDING_MODEL_ID: z.string().default('amazon.titan-embed-text-v2:0'),
  /** summaries of the summarization worker: offline extractive (local) or a Bedrock model through the Converse API */
  SUMMARIZER: z.enum(['local', 'bedrock']).default('local'),
  BEDROCK_SUMMARY_MODEL_ID: z.string().default('anthropic.claude-3-haiku-20240307-v1:0'),
  /** time the write path waits for embed+index before committing the memory as pending */
  EMBED_SYNC_BUDGET_MS: int(2000),
  /** worker threads of the offline embedder for big batches; unset = CPU count (0 on Lambda), 0 = calling thread only */
  EMBED_WORKERS: z.coerce.number().int().min(0).max(64).optional(),
  KEY_RING: z.enum(['local', 'kms']).default('local'),
  KMS_KEY_ID: z.string().optional(),
  /** HS256 secret for access tokens; unset locally = generated and kept in the data dir */
  JWT_SECRET: z.string().min(32).optional(),
  /** On AWS: Secrets Manager secret whose SecretString is the JWT signing secret */
  JWT_SECRET_ARN: z.string().optional(),
  JWT_ISSUER: z.string().default('memorysync'),
  ACCESS_TOKEN_TTL_SECONDS: int(900),
  REFRESH_TOKEN_TTL_DAYS: int(14),
  CORS_ORIGINS: z.string().default('*'),
  MAX_BODY_BYTES: int(1_048_576),
  RATE_LIMITS_ENABLED: bool.default(false),
  /** silent (200 with empty results, as the hosted service) or strict (429 limit_exceeded) */
  QUOTA_MODE: z.enum(['silent', 'strict']).default('silent'),
  /** monthly adds / queries for the free plan; 0 = unlimited */
  FREE_PLAN_MONTHLY_ADDS: int(0),
  FREE_PLAN_MONTHLY_QUERIES: int(0),
  PRO_PLAN_MONTHLY_ADDS: int(0),
  PRO_PLAN_MONTHLY_QUERIES: int(0),
  ENTERPRISE_PLAN_MONTHLY_ADDS: int(0),
  ENTERPRISE_PLAN_MONTHLY_QUERIES: int(0),
  /** comma-separated emails of platform operators (the /admin/* routes) */
  PLATFORM_ADMIN_EMAILS: z.string().default(''),
  LEXICAL_FALLBACK_SCAN_LIMIT: int(500),
  ALLOW_PRIVATE_WEBHOOK_TARGETS: bool.default(false),
  /** webhook deliveries in flight at once to one endpoint, across all workers; excess ones wait */
  WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: z.coerce.number().int().min(1).max(100).default(4),
  /** provider API base URLs of the pull-sync connectors (tests point them at local servers) */
  INTEGRATION_GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  INTEGRATION_NOTION_API_URL: z.string().url().default('https://api.notion.com'),
  INTEGRATION_GOOGLE_DRIVE_API_URL: z.string().url().default('https://www.googleapis.com'),
  INTEGRATION_ONEDRIVE_API_URL: z.string().url().default('https://graph.microsoft.com/v1.0'),
  /** let OIDC discovery, token and JWKS calls reach loopback/private addresses (tests and local dev only) */
  ALLOW_PRIVATE_OIDC_ISSUERS: bool.default(false),
  /** lifetime of OAuth access tokens issued by /oauth/token */
  OAUTH_ACCESS_TOKEN_TTL_SECONDS: int(3600),
  /** lifetime of one OAuth refresh token (each use rotates it) */
  OAUTH_REFRESH_TOKEN_TTL_SECONDS: int(30 * 24 * 3600),
  /** how far a SAML IdP's clock may be from ours when NotBefore/NotOnOrAfter are checked (at most 5 minutes) */
  SAML_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(60),
  /** OAuth clients of the integration providers (authorization-code connect); unset = token pasting only */
  INTEGRATION_GITHUB_CLIENT_ID: z.string().optional(),
  INTEGRATION_GITHUB_CLIENT_SECRET: z.string().optional(),
  INTEGRATION_GITHUB_AUTHORIZE_URL: z.string().url().default('https://github.com/login/oauth/authorize'),
  INTEGRATION_GITHUB_TOKEN_URL: z.string().url().default('https://github.com/login/oauth/access_token'),
  INTEGRATION_NOTION_CLIENT_ID: z.string().optional(),
  INTEGRATION_NOTION_CLIENT_SECRET: z.string().optional(),
  INTEGRATION_NOTION_AUTHORIZE_URL: z.string().url().default('https://api.notion.com/v1/oauth/authorize'),
  INTEGRATION_NOTION_TOKEN_URL: z.string().url().default('https://api.notion.com/v1/oauth/token'),
  INTEGRATION_GOOGLE_DRIVE_CLIENT_ID: z.string().optional(),
  INTEGRATION_GOOGLE_DRIVE_CLIENT_SECRET: z.string().optional(),
  INTEGRATION_GOOGLE_DRIVE_AUTHORIZE_URL: z.string().url().default('https://accounts.google.com/o/oauth2/v2/auth'),
  INTEGRATION_GOOGLE_DRIVE_TOKEN_URL: z.string().url().default('https://oauth2.googleapis.com/token'),
  INTEGRATION_ONEDRIVE_CLIENT_ID: z.string().optional(),
  INTEGRATION_ONEDRIVE_CLIENT_SECRET: z.string().optional(),
  INTEGRATION_ONEDRIVE_AUTHORIZE_URL: z.string().url().default('https://login.microsoftonline.com/common/oauth2/v2.0/authorize'),
  INTEGRATION_ONEDRIVE_TOKEN_URL: z.string().url().default('https://login.microsoftonline.com/common/oauth2/v2.0/token'),
  /** PEM (PKCS#8) Ed25519 key that signs deletion receipts; unset = generated once into the data dir */
  RECEIPT_SIGNING_KEY: z.string().optional(),
  /** create a development tenant, project and key on first start (local only) */
  DEV_BOOTSTRAP: bool.default(true),
  /** worker Lambdas: the task family this function consumes */
  TASK_FAMILY: z.string().optional(),
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']).default('INFO'),
  AWS_REGION: z.string().default('us-east-1'),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

/** Reads and validates configuration once; throws a readable error listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  const parsed = configSchema.safeParse({ ...env, ...overrides });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}
