import { mkdirSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from './config.ts';
import { migrateToLatest } from './db/migrator.ts';
import type { Db } from './ports/db.ts';
import type { Cache } from './ports/cache.ts';
import type { Embedder } from './ports/embedder.ts';
import type { KeyRing } from './ports/key-ring.ts';
import type { ObjectStore } from './ports/object-store.ts';
import type { Queue, TaskFamily } from './ports/queue.ts';
import type { VectorStore } from './ports/vector-store.ts';
import { systemClock, type Clock } from './ports/clock.ts';
import { openPgliteDb } from './adapters/pglite/pglite-db.ts';
import { openPostgresDb } from './adapters/postgres/postgres-db.ts';
import { createPgvectorStore } from './adapters/pgvector/pgvector-store.ts';
import { createPgArrayStore } from './adapters/pg-array/pg-array-store.ts';
import { createLocalEmbedder } from './adapters/local-embedder/index.ts';
import { createOpenAiEmbedder } from './adapters/openai-embedder/index.ts';
import { createMemoryCache } from './adapters/memory-cache/memory-cache.ts';
import { createRedisCache } from './adapters/redis-cache/redis-cache.ts';
import { createLocalKeyRing } from './adapters/local-keys/index.ts';
import { createFsObjectStore } from './adapters/fs-objects/index.ts';
import { createLocalQueue, type LocalQueue } from './adapters/local-queue/index.ts';
import { enqueueTasks, createOutboxRelay, type OutboxRelay } from './outbox/index.ts';
import { TenantKeyService } from './crypto/tenant-keys.ts';
import { IdentityService } from './services/identity-service.ts';
import { MemoryService, type OutboxPort } from './services/memory-service.ts';
import { RefusalLog } from './services/refusal-log.ts';
import { createRecallFeatures, type RecallFeatures } from './services/recall-features.ts';
import { createExtractiveSummarizer } from './adapters/extractive-summarizer/index.ts';
import { UsageService } from './services/usage-service.ts';
import { OidcService } from './services/oidc-service.ts';
import { SamlService } from './services/saml-service.ts';
import { OAuthService } from './services/oauth-service.ts';
import { ScimService } from './services/scim/scim-service.ts';
import { scimGroupResource, scimUserResource } from './http/schemas/scim.ts';
import { OrgService } from './services/org-service.ts';
import { BillingService, usageThresholdListener } from './services/billing-service.ts';
import { AdminService } from './services/admin-service.ts';
import { createOutboundHttp, type HostResolver, type OutboundHttp } from './net/ssrf-guard.ts';
import { WebhookService } from './services/webhook-service.ts';
import { IntegrationService } from './services/integration-service.ts';
import { IntegrationOAuth } from './services/integration-oauth.ts';
import { connectors, createGuardedHttp } from './integrations/index.ts';
import { SiemService } from './services/siem-service.ts';
import { RetentionPolicyService } from './services/retention-policies.ts';
import { loadDeletionReceipts, type DeletionReceipts } from './services/deletion-receipts.ts';
import { RateLimiter } from './services/rate-limiter.ts';
import { AccessTokens } from './services/tokens.ts';
import { Router } from './http/router.ts';
import { createApiHandler } from './http/api-handler.ts';
import { buildRoutes } from './http/routes/index.ts';
import type { ApiHandler } from './http/types.ts';

/** Adapters a caller (tests, the CLI, the Lambda entry points) may supply instead of the configured ones. */
export interface AdapterOverrides {
  db?: Db;
  vectors?: VectorStore;
  embedder?: Embedder;
  cache?: Cache;
  queue?: Queue;
  objects?: ObjectStore;
  keyRing?: KeyRing;
  clock?: Clock;
  logger?: Logger;
  jwtSecret?: string;
  /** DNS for outbound targets (webhooks, SIEM); tests answer with chosen addresses */
  resolveHost?: HostResolver;
}

export interface App {
  config: Config;
  logger: Logger;
  clock: Clock;
  db: Db;
  vectors: VectorStore;
  embedder: Embedder;
  cache: Cache;
  queue: Queue;
  objects: ObjectStore;
  keyRing: KeyRing;
  tenantKeys: TenantKeyService;
  relay: OutboxRelay;
  identity: IdentityService;
  memories: MemoryService;
  oidc: OidcService;
  saml: SamlService;
  oauth: OAuthService;
  scim: ScimService;
  recall: RecallFeatures;
  usage: UsageService;
  org: OrgService;
  billing: BillingService;
  admin: AdminService;
  /** SSRF-guarded client for tenant-configured targets */
  outbound: OutboundHttp;
  webhooks: WebhookService;
  /** pull-sync connections and crawler jobs */
  integrations: IntegrationService;
  siem: SiemService;
  /** signs deletion receipts (Ed25519) */
  receipts: DeletionReceipts;
  router: Router;
  api: ApiHandler;
  close(): Promise<void>;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms).unref())]);

/**
 * The composition root: configuration → adapters → services → routes → the middy handler. The only
 * place that picks adapters. Boot order follows the seed: schema migrated, embedder warmed (10 s),
 * vector store opened, queue ready, routes mounted, middlewares composed.
 */
export async function createApp(config: Config, overrides: AdapterOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? new Logger({ serviceName: 'memorysync', logLevel: config.LOG_LEVEL });
  const clock = overrides.clock ?? systemClock;
  const dataDir = config.MEMORYSYNC_DATA_DIR;
  const inMemory = dataDir === ':memory:';
  if (!inMemory) mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const db = overrides.db ?? (await openDatabase(config, inMemory));
  await migrateToLatest(db.kysely);

  const embedder = overrides.embedder ?? (await createEmbedder(config));
  await withTimeout(embedder.warm(), 10_000, 'embedder warm-up').catch((err) => logger.warn('embedder not warm; writes will embed later', { error: (err as Error).message }));

  const vectors = overrides.vectors ?? (await createVectorStore(config, db));
  await vectors.open(embedder.dimension);

  const cache = overrides.cache ?? (config.REDIS_URL ? createRedisCache({ url: config.REDIS_URL }) : createMemoryCache());
  const keyRing = overrides.keyRing ?? (await createKeyRing(config, inMemory));
  const objects = overrides.objects ?? (await createObjectStore(config, inMemory));
  const queue = overrides.queue ?? (await createQueue(config));
  const relay = createOutboxRelay({ db, queue, logger });
  const outbox: OutboxPort = {
    enqueue: async (trx, tasks) => {
      await enqueueTasks(trx, tasks);
    },
    relay: async (ids) => {
      // After commit: a failed relay leaves the rows for the sweep, never fails the request.
      await relay.relayNow(ids).catch((err) => logger.warn('outbox relay failed; sweep will retry', { error: (err as Error).message }));
    },
    // The work ran inline: mark the rows relayed and record them in the workers' ledger, so neither the
    // sweep nor a requeue after restart ever sends them.
    settle: async (ids) => {
      if (!ids.length) return;
      await db.kysely.transaction().execute(async (trx) => {
        const rows = await trx.updateTable('outbox').set({ relayed_at: clock.now() }).where('task_id', 'in', ids).where('relayed_at', 'is', null).returning(['task_id', 'family']).execute();
        if (rows.length) await trx.insertInto('processed_tasks').values(rows.map((r) => ({ task_id: r.task_id, family: r.family }))).onConflict((oc) => oc.column('task_id').doNothing()).execute();
      });
    },
  };

  const tenantKeys = new TenantKeyService(db.kysely, keyRing);
  const jwtSecret = overrides.jwtSecret ?? (await resolveJwtSecret(config, inMemory));
  const tokens = new AccessTokens(jwtSecret, config.JWT_ISSUER, config.ACCESS_TOKEN_TTL_SECONDS);
  const identity = new IdentityService({
    db: db.kysely, cache, clock, tokens, tenantKeys, refreshSecret: `${jwtSecret}:refresh`,
    refreshTtlDays: config.REFRESH_TOKEN_TTL_DAYS, cacheTtlSeconds: config.CACHE_TTL_SECONDS,
    platformAdminEmails: config.PLATFORM_ADMIN_EMAILS.split(',').map((e) => e.trim().toLowerCase()).filter(Boolean),
    outbox,
  });
  const plans = {
    free: { adds: config.FREE_PLAN_MONTHLY_ADDS, queries: config.FREE_PLAN_MONTHLY_QUERIES },
    pro: { adds: config.PRO_PLAN_MONTHLY_ADDS, queries: config.PRO_PLAN_MONTHLY_QUERIES },
    enterprise: { adds: config.ENTERPRISE_PLAN_MONTHLY_ADDS, queries: config.ENTERPRISE_PLAN_MONTHLY_QUERIES },
  };
  const usage = new UsageService({
    db: db.kysely, cache, clock, defaultQuotaMode: config.QUOTA_MODE,
    plans, onRecorded: usageThresholdListener({ outbox, clock }),
  });
  const refusals = new RefusalLog({ db: db.kysely, tenantKeys, clock });
  const memories = new MemoryService({
    db: db.kysely, vectors, embedder, cache, clock, tenantKeys, usage, outbox, refusals,
    embedBudgetMs: config.EMBED_SYNC_BUDGET_MS, lexicalScanLimit: config.LEXICAL_FALLBACK_SCAN_LIMIT, cacheTtlSeconds: config.CACHE_TTL_SECONDS,
  });
  const org = new OrgService({ db: db.kysely, cache, clock, outbox, vectors });
  const billing = new BillingService({ db: db.kysely, clock, usage, plans });
  const admin = new AdminService({ db: db.kysely, cache, clock, outbox, vectors, tenantKeys, deadLetters: queue.dlq, queueKind: queue.kind });
  const oidc = new OidcService({ db: db.kysely, cache, clock, tenantKeys, identity, allowPrivateIssuers: config.ALLOW_PRIVATE_OIDC_ISSUERS });
  const saml = new SamlService({ db: db.kysely, clock, identity, clockSkewSeconds: config.SAML_CLOCK_SKEW_SECONDS });
  const oauth = new OAuthService({ db: db.kysely, cache, clock, signingSecret: `${jwtSecret}:oauth`, issuer: config.JWT_ISSUER, accessTokenTtlSeconds: config.OAUTH_ACCESS_TOKEN_TTL_SECONDS, refreshTokenTtlSeconds: config.OAUTH_REFRESH_TOKEN_TTL_SECONDS, cacheTtlSeconds: config.CACHE_TTL_SECONDS });
  const scim = new ScimService({ db: db.kysely, cache, clock, cacheTtlSeconds: config.CACHE_TTL_SECONDS, schemas: { user: scimUserResource, group: scimGroupResource } });
  const limiter = new RateLimiter(cache, clock);
  const recall = createRecallFeatures({ db: db.kysely, vectors, embedder, cache, clock, outbox, memories, refusals, summarizer: createExtractiveSummarizer() });
  const outbound = createOutboundHttp({ allowPrivate: config.ALLOW_PRIVATE_WEBHOOK_TARGETS, resolve: overrides.resolveHost });
  const webhooks = new WebhookService({ db: db.kysely, clock, tenantKeys, outbox, outbound });
  const siem = new SiemService({ db: db.kysely, clock, tenantKeys, outbound });
  const integrations = new IntegrationService({
    db: db.kysely, clock, tenantKeys, identity, memories, outbox, logger,
    http: createGuardedHttp({ allowPrivate: config.ALLOW_PRIVATE_WEBHOOK_TARGETS, resolve: overrides.resolveHost }),
    engine: { connectors, logger, baseUrls: { github: config.INTEGRATION_GITHUB_API_URL, notion: config.INTEGRATION_NOTION_API_URL, google_drive: config.INTEGRATION_GOOGLE_DRIVE_API_URL, onedrive: config.INTEGRATION_ONEDRIVE_API_URL } },
    oauth: new IntegrationOAuth({
      db: db.kysely, clock, tenantKeys,
      clients: {
        github: { clientId: config.INTEGRATION_GITHUB_CLIENT_ID, clientSecret: config.INTEGRATION_GITHUB_CLIENT_SECRET, authorizeUrl: config.INTEGRATION_GITHUB_AUTHORIZE_URL, tokenUrl: config.INTEGRATION_GITHUB_TOKEN_URL },
        notion: { clientId: config.INTEGRATION_NOTION_CLIENT_ID, clientSecret: config.INTEGRATION_NOTION_CLIENT_SECRET, authorizeUrl: config.INTEGRATION_NOTION_AUTHORIZE_URL, tokenUrl: config.INTEGRATION_NOTION_TOKEN_URL },
        google_drive: { clientId: config.INTEGRATION_GOOGLE_DRIVE_CLIENT_ID, clientSecret: config.INTEGRATION_GOOGLE_DRIVE_CLIENT_SECRET, authorizeUrl: config.INTEGRATION_GOOGLE_DRIVE_AUTHORIZE_URL, tokenUrl: config.INTEGRATION_GOOGLE_DRIVE_TOKEN_URL },
        onedrive: { clientId: config.INTEGRATION_ONEDRIVE_CLIENT_ID, clientSecret: config.INTEGRATION_ONEDRIVE_CLIENT_SECRET, authorizeUrl: config.INTEGRATION_ONEDRIVE_AUTHORIZE_URL, tokenUrl: config.INTEGRATION_ONEDRIVE_TOKEN_URL },
      },
    }),
  });
  const retentionPolicies = new RetentionPolicyService({ db: db.kysely, clock });
  const receipts = loadDeletionReceipts({ dataDir, signingKeyPem: config.RECEIPT_SIGNING_KEY, clock });
  const routes = buildRoutes({ config, db, vectors, embedder, cache, identity, memories, usage, org, billing, admin, recall, oidc, saml, oauth, scim, webhooks, integrations, siem, retentionPolicies, siemForwarding: { db, clock, logger, relay, outbound, objects, siem }, receipts });
  const router = new Router(routes);
  const api = createApiHandler({
    router, identity, limiter, db: db.kysely, logger,
    corsOrigins: config.CORS_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean),
    maxBodyBytes: config.MAX_BODY_BYTES, rateLimitsEnabled: config.RATE_LIMITS_ENABLED,
    bearerResolvers: [
      { accepts: (t) => oauth.isOAuthToken(t), resolve: (t) => oauth.principalFromToken(t) },
      { accepts: (t) => t.startsWith('scim_'), resolve: (t) => scim.principalFromToken(t) },
    ],
  });

  let closed = false;
  return {
    config, logger, clock, db, vectors, embedder, cache, queue, objects, keyRing, tenantKeys, relay, identity, memories, oidc, saml, oauth, scim, recall, usage, org, billing, admin, outbound, webhooks, siem, receipts, integrations, router, api,
    async close() {
      if (closed) return;
      closed = true;
      await queue.close().catch(() => {});
      outbound.close();
      await cache.close().catch(() => {});
      await vectors.close().catch(() => {});
      if (!overrides.embedder) await embedder.close?.().catch(() => {});
      if (!overrides.db) await db.close();
    },
  };
}

/** The configured database (PostgreSQL by URL or secret, else PGlite); the CLI opens it before the app for `reindex --rebuild`. */
export async function openDatabase(config: Config, inMemory: boolean): Promise<Db> {
  const pool = {
    maxConnections: config.DATABASE_POOL_MAX, connectionTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    acquireTimeoutMs: config.DATABASE_POOL_ACQUIRE_TIMEOUT_MS, maxWaiting: config.DATABASE_POOL_MAX_WAITING,
    enableVector: config.VECTOR_STORE === 'pgvector' || config.VECTOR_STORE === 'auto',
  };
  if (config.DATABASE_URL) return openPostgresDb({ connectionString: config.DATABASE_URL, ...pool });
  if (config.DATABASE_SECRET_ARN && config.DATABASE_HOST) {
    // The secret is read again when the server refuses the password (rotation), without a cold start.
    const ssl = config.DATABASE_SSL ? '?sslmode=no-verify' : '';
    return openPostgresDb({ connectionString: `postgres://${config.DATABASE_HOST}:${config.DATABASE_PORT}/${config.DATABASE_NAME}${ssl}`, credentials: () => databaseSecret(config), ...pool });
  }
  return openPgliteDb(inMemory ? { templatePath: config.PGLITE_TEMPLATE } : { dataDir: join(config.MEMORYSYNC_DATA_DIR, 'pgdata') });
}

/** On AWS the database password lives in Secrets Manager (rotated); the connection goes through RDS Proxy. */
async function databaseSecret(config: Config): Promise<{ user: string; password: string }> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({ region: config.AWS_REGION });
  const out = await client.send(new GetSecretValueCommand({ SecretId: config.DATABASE_SECRET_ARN }));
  const secret = JSON.parse(out.SecretString ?? '{}') as { username: string; password: string };
  return { user: secret.username, password: secret.password };
}

async function resolveJwtSecret(config: Config, inMemory: boolean): Promise<string> {
  if (config.JWT_SECRET) return config.JWT_SECRET;
  if (config.JWT_SECRET_ARN) {
    const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const out = await new SecretsManagerClient({ region: config.AWS_REGION }).send(new GetSecretValueCommand({ SecretId: config.JWT_SECRET_ARN }));
    if (!out.SecretString || out.SecretString.length < 32) throw new Error('JWT secret must be at least 32 characters');
    return out.SecretString;
  }
  if (inMemory) return randomBytes(32).toString('base64url');
  // Local: generated once, kept beside the data with owner-only permissions.
  const path = join(config.MEMORYSYNC_DATA_DIR, 'jwt-secret');
  if (!existsSync(path)) writeFileSync(path, randomBytes(48).toString('base64url'), { mode: 0o600 });
  chmodSync(path, 0o600);
  return readFileSync(path, 'utf8').trim();
}

// AWS adapters are imported on demand so the local runtime never loads their SDKs.

async function createEmbedder(config: Config): Promise<Embedder> {
  switch (config.EMBEDDER) {
    case 'openai':
      if (!config.EMBEDDINGS_URL) throw new Error('EMBEDDER=openai needs EMBEDDINGS_URL');
      return createOpenAiEmbedder({ url: config.EMBEDDINGS_URL, model: config.EMBEDDINGS_MODEL, apiKey: config.EMBEDDINGS_API_KEY, dimension: config.EMBEDDINGS_DIMENSION });
    case 'bedrock': {
      const [{ BedrockRuntimeClient }, { createBedrockEmbedder }] = await Promise.all([import('@aws-sdk/client-bedrock-runtime'), import('./adapters/bedrock/index.ts')]);
      const dimension = (config.EMBEDDINGS_DIMENSION ?? 1024) as 256 | 512 | 1024;
      return createBedrockEmbedder({ client: new BedrockRuntimeClient({ region: config.AWS_REGION }), modelId: config.BEDROCK_EMBEDDING_MODEL_ID, dimension });
    }
    default:
      return createLocalEmbedder({ workers: embedWorkers(config) });
  }
}

/** EMBED_WORKERS, or every CPU; none on Lambda, whose bundle does not ship the worker file. */
function embedWorkers(config: Config): number {
  if (config.EMBED_WORKERS !== undefined) return config.EMBED_WORKERS;
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) return 0;
  const cpus = availableParallelism();
  return cpus > 1 ? cpus : 0;
}

async function createVectorStore(config: Config, db: Db): Promise<VectorStore> {
  if (config.VECTOR_STORE === 'pgvector' || (config.VECTOR_STORE === 'auto' && db.hasVector)) {
    if (!db.hasVector) throw new Error('VECTOR_STORE=pgvector needs the pgvector extension in the database (CREATE EXTENSION vector)');
    return createPgvectorStore({ db: db.kysely });
  }
  if (config.VECTOR_STORE === 'pg-array' || config.VECTOR_STORE === 'auto') return createPgArrayStore({ db: db.kysely });
  if (!config.OPENSEARCH_ENDPOINT) throw new Error('VECTOR_STORE=opensearch needs OPENSEARCH_ENDPOINT');
  const { createOpenSearchClient, createOpenSearchVectorStore } = await import('./adapters/opensearch/index.ts');
  const client = createOpenSearchClient({ endpoint: config.OPENSEARCH_ENDPOINT, region: config.AWS_REGION, service: config.OPENSEARCH_ENDPOINT.includes('.aoss.') ? 'aoss' : 'es' });
  return createOpenSearchVectorStore({ client, mode: config.OPENSEARCH_NAMESPACE_MODE, sharedIndex: config.OPENSEARCH_SHARED_INDEX, refresh: 'wait_for' });
}

async function createKeyRing(config: Config, inMemory: boolean): Promise<KeyRing> {
  if (config.KEY_RING === 'local') {
    return inMemory ? createLocalKeyRing({ masterKey: randomBytes(32) }) : createLocalKeyRing({ masterKeyPath: join(config.MEMORYSYNC_DATA_DIR, 'master.key') });
  }
  if (!config.KMS_KEY_ID) throw new Error('KEY_RING=kms needs KMS_KEY_ID');
  const [{ KMSClient }, { createKmsKeyRing }] = await Promise.all([import('@aws-sdk/client-kms'), import('./adapters/kms/index.ts')]);
  return createKmsKeyRing({ client: new KMSClient({ region: config.AWS_REGION }), keyId: config.KMS_KEY_ID });
}

async function createObjectStore(config: Config, inMemory: boolean): Promise<ObjectStore> {
  if (config.OBJECT_STORE === 'fs') {
    const root = inMemory ? join(process.env.TMPDIR ?? '/tmp', `memorysync-objects-${process.pid}-${randomBytes(4).toString('hex')}`) : join(config.MEMORYSYNC_DATA_DIR, 'objects');
    return createFsObjectStore({ root });
  }
  if (!config.S3_BUCKET) throw new Error('OBJECT_STORE=s3 needs S3_BUCKET');
  const [{ S3Client }, { createS3ObjectStore }] = await Promise.all([import('@aws-sdk/client-s3'), import('./adapters/s3/index.ts')]);
  const client = new S3Client({ region: config.AWS_REGION, ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT, forcePathStyle: true } : {}) });
  return createS3ObjectStore({ client, bucket: config.S3_BUCKET, kmsKeyId: config.KMS_KEY_ID });
}

async function createQueue(config: Config): Promise<Queue> {
  if (config.QUEUE === 'local') return createLocalQueue();
  const queueUrls = JSON.parse(config.SQS_QUEUE_URLS ?? '{}') as Partial<Record<TaskFamily, string>>;
  const deadLetterQueueUrls = JSON.parse(config.SQS_DLQ_URLS ?? '{}') as Partial<Record<TaskFamily, string>>;
  const [{ SQSClient }, { createSqsQueue }] = await Promise.all([import('@aws-sdk/client-sqs'), import('./adapters/sqs/index.ts')]);
  return createSqsQueue({ client: new SQSClient({ region: config.AWS_REGION, ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}) }), queueUrls, deadLetterQueueUrls });
}

export type { LocalQueue, TaskFamily };
