import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { CrawlJobsTable, Database, IntegrationConnectionsTable } from '../db/schema.ts';
import { seal } from '../crypto/aead.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { AppError, forbidden, notFound } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { SsrfBlockedError } from '../net/ssrf-guard.ts';
import type { Task } from '../ports/queue.ts';
import { crawlSite, CrawlRefusedError } from '../integrations/crawler.ts';
import type { GuardedHttp } from '../integrations/guarded-http.ts';
import { chunkObject, ingestChunks, integrationPrincipal, workerMeta } from '../integrations/ingest.ts';
import { runSync, tokenAad, type SyncEngineDeps, type SyncOutcome } from '../integrations/sync-engine.ts';
import type { Provider } from '../integrations/types.ts';
import { writeAudit } from './audit.ts';
import { IntegrationOAuth, ProviderGrantError, refreshTokenAad } from './integration-oauth.ts';
import { auditBase, principalLabel, type AuditMeta, type IdentityService } from './identity-service.ts';
import type { MemoryService, OutboxPort } from './memory-service.ts';
import type { EndUserScope, Scope } from './scope.ts';

export interface IntegrationServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  tenantKeys: TenantKeyService;
  identity: IdentityService;
  memories: MemoryService;
  outbox: OutboxPort;
  /** SSRF-guarded client of the connectors and the crawler */
  http: GuardedHttp;
  engine: Omit<SyncEngineDeps, 'db' | 'clock' | 'memories' | 'tenantKeys' | 'http'>;
  /** the providers' authorization-code flow (connect without a token) */
  oauth?: IntegrationOAuth;
  logger?: Logger;
}

type ConnectionRow = Selectable<IntegrationConnectionsTable>;
type CrawlJobRow = Selectable<CrawlJobsTable>;

const SKIPPED_LOG_LIMIT = 50;
const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

/** The response shape of a connection: never the token. */
export function connectionView(row: ConnectionRow) {
  return {
    id: row.id, provider: row.provider, project_id: row.project_id, end_user_id: row.end_user_id, status: row.status,
    auth_method: row.auth_method === 'oauth' ? 'oauth' as const : 'token' as const, token_expires_at: iso(row.token_expires_at),
    options: row.options, last_sync_started_at: iso(row.last_sync_started_at), last_sync_at: iso(row.last_sync_at),
    next_sync_at: iso(row.next_sync_at), last_error: row.last_error,
    counts: { objects_synced: row.objects_synced, memories_created: row.memories_created },
    initial_sync_complete: Boolean(row.sync_state?.checkpoint), created_at: iso(row.created_at),
  };
}

export function crawlJobView(row: CrawlJobRow) {
  return {
    id: row.id, url: row.url, max_pages: row.max_pages, project_id: row.project_id, end_user_id: row.end_user_id, status: row.status,
    pages_fetched: row.pages_fetched, pages_skipped: row.pages_skipped, memories_created: row.memories_created,
    skipped: row.skipped, last_error: row.last_error, created_at: iso(row.created_at), started_at: iso(row.started_at), finished_at: iso(row.finished_at),
  };
}

/**
 * Integrations (pull-sync connections) and crawler jobs: the routes' side (connect, list, sync now,
 * disconnect, crawl) and the worker side (run a sync, run a crawl, enqueue due syncs).
 */
export class IntegrationService {
  constructor(private readonly deps: IntegrationServiceDeps) {}

  // ------------------------------------------------------------------ connections

  async list(scope: Scope, page: { limit: number; offset: number }) {
    let q = this.deps.db.selectFrom('integration_connections').where('tenant_id', '=', scope.tenantId);
    if (scope.principal.projectLock) q = q.where('project_id', '=', scope.principal.projectLock);
    const [rows, total] = await Promise.all([
      q.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(page.limit).offset(page.offset).execute(),
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(connectionView), total: Number(total.n), limit: page.limit, offset: page.offset };
  }

  async get(scope: Scope, id: string) {
    return connectionView(await this.connectionOrThrow(scope, id));
  }

  async connect(scope: Scope, provider: Provider, input: { access_token: string; end_user_id: string; project_id?: string | null; options?: Record<string, unknown> }, meta: AuditMeta) {
    const projectId = await this.projectFor(scope, input.project_id);
    const userId = await this.deps.identity.resolveEndUser(scope.tenantId, input.end_user_id);
    return this.createConnection({
      tenantId: scope.tenantId, provider, projectId, userId, endUserId: input.end_user_id, environment: scope.principal.environment, options: input.options ?? {},
      tokens: { accessToken: input.access_token, refreshToken: null, expiresAt: null }, authMethod: 'token', createdBy: principalLabel(scope.principal), accountId: scope.principal.accountId,
    }, meta);
  }

  /**
   * Connect through the provider's authorization page: the project and end user are settled now (from
   * the caller's credential), the provider's authorization URL comes back with a single-use state
   * (+ PKCE where the provider supports it), and the connection is made by the callback.
   */
  async startOAuthConnect(scope: Scope, provider: Provider, input: { end_user_id: string; project_id?: string | null; options?: Record<string, unknown> }, redirectUri: string, meta: AuditMeta) {
    if (!this.deps.oauth) throw new AppError('INTEGRATION_OAUTH_NOT_CONFIGURED', 422, 'OAuth connect is not configured; connect with an access_token');
    const projectId = await this.projectFor(scope, input.project_id);
    const started = await this.deps.oauth.start({
      tenantId: scope.tenantId, provider, projectId, endUserId: input.end_user_id, environment: scope.principal.environment, options: input.options ?? {},
      redirectUri, createdBy: principalLabel(scope.principal), createdByAccount: scope.principal.accountId,
    });
    await this.audit(this.deps.db, scope, meta, 'integration.authorization_started', provider, 'authorize', 200, { provider, project_id: projectId });
    return started;
  }

  /** The provider's redirect back: spends the state, exchanges the code, stores the tokens sealed and queues the initial sync. */
  async completeOAuthConnect(provider: Provider, input: { code?: string; state?: string; error?: string; error_description?: string }, redirectUri: string, meta: AuditMeta) {
    if (!this.deps.oauth) throw new AppError('INTEGRATION_OAUTH_NOT_CONFIGURED', 422, 'OAuth connect is not configured');
    if (!input.state) throw new AppError('VALIDATION_ERROR', 422, 'state is required', [{ field: 'state', message: 'required' }]);
    const pending = await this.deps.oauth.takeState(provider, input.state);
    if (input.error) throw new AppError('INTEGRATION_AUTH_DENIED', 400, `${provider} did not authorize the connection: ${input.error}`);
    if (!input.code) throw new AppError('VALIDATION_ERROR', 422, 'code is required', [{ field: 'code', message: 'required' }]);
    if (pending.redirect_uri !== redirectUri) throw new AppError('INTEGRATION_STATE_INVALID', 400, 'The callback URL differs from the one the authorization was started with');
    const tokens = await this.deps.oauth.exchangeCode(provider, input.code, pending.redirect_uri, pending.verifier);
    const userId = await this.deps.identity.resolveEndUser(pending.tenant_id, pending.end_user_id);
    return this.createConnection({
      tenantId: pending.tenant_id, provider, projectId: pending.project_id, userId, endUserId: pending.end_user_id, environment: pending.environment, options: pending.options ?? {},
      tokens, authMethod: 'oauth', createdBy: pending.created_by, accountId: pending.created_by_account,
    }, meta);
  }

  private async createConnection(c: {
    tenantId: string; provider: Provider; projectId: string; userId: number; endUserId: string; environment: string; options: Record<string, unknown>;
    tokens: { accessToken: string; refreshToken: string | null; expiresAt: Date | null }; authMethod: 'token' | 'oauth'; createdBy: string | null; accountId: number | null;
  }, meta: AuditMeta) {
    const keys = await this.deps.tenantKeys.forTenant(c.tenantId);
    const id = `int_${randomBytes(12).toString('hex')}`;
    const now = this.deps.clock.now();
    const task = this.syncTask(c.tenantId, id, 'initial');
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('integration_connections').values({
        id, tenant_id: c.tenantId, project_id: c.projectId, provider: c.provider, user_id: c.userId, end_user_id: c.endUserId,
        environment: c.environment, token_ciphertext: seal(keys.dataKey, c.tokens.accessToken, tokenAad(c.tenantId, id)), auth_method: c.authMethod,
        refresh_token_ciphertext: c.tokens.refreshToken ? seal(keys.dataKey, c.tokens.refreshToken, refreshTokenAad(c.tenantId, id)) : null, token_expires_at: c.tokens.expiresAt,
        options: JSON.stringify(c.options), sync_state: JSON.stringify({}), created_by: c.createdBy, created_at: now, updated_at: now,
      }).returningAll().executeTakeFirstOrThrow();
      await this.deps.outbox.enqueue(trx, [task]);
      meta.audit.written = true;
      await writeAudit(trx, {
        ...auditBase(meta), tenantId: c.tenantId, userId: c.accountId, principal: c.createdBy, eventType: 'integration.connected', category: 'data', resourceType: 'integration',
        resourceId: id, action: 'create', status: 'success', statusCode: 201, payload: { provider: c.provider, project_id: c.projectId, auth_method: c.authMethod },
      });
      return inserted;
    });
    await this.deps.outbox.relay([task.id]);
    return connectionView(row);
  }

  async requestSync(scope: Scope, id: string, meta: AuditMeta) {
    const conn = await this.connectionOrThrow(scope, id);
    const task = this.syncTask(scope.tenantId, conn.id, 'manual');
    await this.deps.db.transaction().execute(async (trx) => {
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, scope, meta, 'integration.sync_requested', conn.id, 'sync', 202);
    });
    await this.deps.outbox.relay([task.id]);
    return { id: conn.id, status: 'queued' as const, task_id: task.id };
  }

  /** Removes the connection (and its token); the memories it brought in stay unless `purge`. */
  async disconnect(scope: Scope, id: string, purge: boolean, meta: AuditMeta) {
    const conn = await this.connectionOrThrow(scope, id);
    let purged = 0;
    if (purge) {
      const rows = await this.deps.db.selectFrom('integration_items').select('memory_id').where('connection_id', '=', conn.id).where('memory_id', 'is not', null).execute();
      const ids = [...new Set(rows.map((r) => Number(r.memory_id)))];
      // memories.delete writes this request's one audit row (as integration.purged) with the deleted ids.
      if (ids.length) purged = (await this.deps.memories.delete(this.endUserScope(conn, scope), ids, meta, 'integration.purged')).length;
    }
    await this.deps.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('integration_connections').where('tenant_id', '=', scope.tenantId).where('id', '=', conn.id).execute();
      if (!meta.audit.written) await this.audit(trx, scope, meta, 'integration.disconnected', conn.id, 'delete', 200, { provider: conn.provider, purge });
    });
    return { id: conn.id, deleted: true as const, memories_purged: purged };
  }

  // ------------------------------------------------------------------ crawler

  async createCrawlJob(scope: Scope, input: { url: string; max_pages: number; end_user_id: string; project_id?: string | null }, meta: AuditMeta) {
    try {
      await this.deps.http.verify(input.url);
    } catch (error) {
      if (error instanceof SsrfBlockedError) throw new AppError('URL_NOT_ALLOWED', 422, `The crawler may not fetch this URL: ${error.reason}`);
      throw error;
    }
    const projectId = await this.projectFor(scope, input.project_id);
    const userId = await this.deps.identity.resolveEndUser(scope.tenantId, input.end_user_id);
    const id = `crj_${randomBytes(12).toString('hex')}`;
    const now = this.deps.clock.now();
    const task: Task = { id: randomUUID(), family: 'integration-sync', tenantId: scope.tenantId, type: 'crawl', payload: { jobId: id }, createdAt: now.toISOString() };
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('crawl_jobs').values({
        id, tenant_id: scope.tenantId, project_id: projectId, user_id: userId, end_user_id: input.end_user_id, environment: scope.principal.environment,
        url: input.url, max_pages: input.max_pages, skipped: JSON.stringify([]), last_error: null, created_by: principalLabel(scope.principal), created_at: now,
      }).returningAll().executeTakeFirstOrThrow();
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, scope, meta, 'crawler.job_created', id, 'create', 202, { max_pages: input.max_pages });
      return inserted;
    });
    await this.deps.outbox.relay([task.id]);
    return crawlJobView(row);
  }

  async getCrawlJob(scope: Scope, id: string) {
    let q = this.deps.db.selectFrom('crawl_jobs').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', id);
    if (scope.principal.projectLock) q = q.where('project_id', '=', scope.principal.projectLock);
    const row = await q.executeTakeFirst();
    if (!row) throw notFound('Crawl job not found');
    return crawlJobView(row);
  }

  // ------------------------------------------------------------------ worker side

  /** One sync run; a pass cut short by the per-run page or time budget queues its own continuation. */
  async sync(tenantId: string, connectionId: string): Promise<SyncOutcome> {
    const { db, clock, memories, tenantKeys, http } = this.deps;
    if (this.deps.oauth) {
      const conn = await db.selectFrom('integration_connections').selectAll().where('tenant_id', '=', tenantId).where('id', '=', connectionId).executeTakeFirst();
      if (!conn) return { status: 'missing' };
      try {
        await this.deps.oauth.ensureFresh(conn);
      } catch (error) {
        if (!(error instanceof ProviderGrantError)) throw error;
        // The grant is gone at the provider (revoked, expired refresh token): only a new connect helps.
        const message = `${error.message}; reconnect the integration`;
        await db.updateTable('integration_connections').set({ status: 'error', last_error: message.slice(0, 500), next_sync_at: null, updated_at: clock.now() })
          .where('tenant_id', '=', tenantId).where('id', '=', connectionId).execute();
        return { status: 'error', error: message };
      }
    }
    const outcome = await runSync({ ...this.deps.engine, db, clock, memories, tenantKeys, http }, tenantId, connectionId);
    if (outcome.status === 'partial') {
      // At once, not at the next poll (every 15 minutes on AWS).
      const task = this.syncTask(tenantId, connectionId, 'continue');
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('integration_connections').set({ next_sync_at: null }).where('tenant_id', '=', tenantId).where('id', '=', connectionId).execute();
        await this.deps.outbox.enqueue(trx, [task]);
      });
      await this.deps.outbox.relay([task.id]);
    }
    return outcome;
  }

  /** Runs a crawl job; a redelivered task resumes harmlessly (pages already stored are skipped by their idempotency keys). */
  async crawl(tenantId: string, jobId: string): Promise<void> {
    const { db, clock } = this.deps;
    const job = await db.updateTable('crawl_jobs').set({ status: 'running', started_at: clock.now() })
      .where('tenant_id', '=', tenantId).where('id', '=', jobId).where('status', 'in', ['queued', 'running']).returningAll().executeTakeFirst();
    if (!job) return;
    const scope: EndUserScope = {
      tenantId, projectId: job.project_id, principal: integrationPrincipal(tenantId, `crawler:${jobId}`),
      userId: job.user_id, endUserExternalId: job.end_user_id, environment: job.environment,
    };
    const skipped: Array<{ url: string; reason: string }> = [];
    const update = (set: Record<string, unknown>) => db.updateTable('crawl_jobs').set(set).where('tenant_id', '=', tenantId).where('id', '=', jobId).execute();
    try {
      await crawlSite(this.deps.http, job.url, job.max_pages, {
        page: async (page) => {
          const object = { id: page.url, type: 'web_page', url: page.url, content: page.title ? `${page.title}\n\n${page.text}` : page.text, metadata: { title: page.title } };
          const result = await ingestChunks({
            db, memories: this.deps.memories, scope, source: 'crawler', idempotencyPrefix: `crawl:${jobId}`,
            meta: () => workerMeta(`crawl-${jobId}`, 'memorysync-crawler'), metadata: { crawl_job_id: jobId },
          }, [chunkObject(object)]);
          await update({ pages_fetched: sql`pages_fetched + 1`, memories_created: sql`memories_created + ${result.created}` });
        },
        skip: async (url, reason) => {
          if (skipped.length < SKIPPED_LOG_LIMIT) skipped.push({ url, reason });
          await update({ pages_skipped: sql`pages_skipped + 1`, skipped: JSON.stringify(skipped) });
        },
      });
      await update({ status: 'completed', finished_at: clock.now() });
    } catch (error) {
      const message = error instanceof CrawlRefusedError ? error.message : `crawl failed: ${(error as Error).message}`;
      await update({ status: 'failed', last_error: message.slice(0, 500), finished_at: clock.now() });
      if (!(error instanceof CrawlRefusedError)) this.deps.logger?.warn('crawl failed', { jobId, tenantId, error: (error as Error).message });
    }
  }

  /** Enqueues a sync for every connection whose `next_sync_at` has come (incremental polls and rate-limit resumes). */
  async enqueueDue(limit = 500): Promise<number> {
    const now = this.deps.clock.now();
    const due = await this.deps.db.selectFrom('integration_connections').select(['id', 'tenant_id'])
      .where('next_sync_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('next_sync_at').limit(limit).execute();
    if (due.length === 0) return 0;
    const tasks = due.map((c) => this.syncTask(c.tenant_id, c.id, 'scheduled'));
    await this.deps.db.transaction().execute(async (trx) => {
      // Cleared so the next poll does not enqueue the same connection again before this sync runs.
      await trx.updateTable('integration_connections').set({ next_sync_at: null }).where('id', 'in', due.map((c) => c.id)).execute();
      await this.deps.outbox.enqueue(trx, tasks);
    });
    await this.deps.outbox.relay(tasks.map((t) => t.id));
    return tasks.length;
  }

  // ------------------------------------------------------------------ internals

  private syncTask(tenantId: string, connectionId: string, reason: 'initial' | 'manual' | 'scheduled' | 'continue'): Task {
    return { id: randomUUID(), family: 'integration-sync', tenantId, type: 'sync', payload: { connectionId, reason }, createdAt: this.deps.clock.now().toISOString() };
  }

  /** The project synced memories go to: the body's, else the caller's (X-Project-ID or key lock), else the tenant default. */
  private async projectFor(scope: Scope, requested: string | null | undefined): Promise<string> {
    const lock = scope.principal.projectLock;
    if (requested && lock && requested !== lock) throw forbidden('This API key is locked to another project', 'PROJECT_FORBIDDEN');
    const wanted = requested ?? scope.projectId ?? lock;
    if (wanted) return (await this.deps.identity.getProjectOrThrow(scope, wanted)).id;
    const row = await this.deps.db.selectFrom('projects').select('id').where('tenant_id', '=', scope.tenantId).where('is_default', '=', true).executeTakeFirst();
    if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'The organisation has no default project; pass project_id');
    return row.id;
  }

  private async connectionOrThrow(scope: Scope, id: string): Promise<ConnectionRow> {
    let q = this.deps.db.selectFrom('integration_connections').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', id);
    if (scope.principal.projectLock) q = q.where('project_id', '=', scope.principal.projectLock);
    const row = await q.executeTakeFirst();
    if (!row) throw notFound('Integration not found');
    return row;
  }

  private endUserScope(conn: ConnectionRow, scope: Scope): EndUserScope {
    return { tenantId: scope.tenantId, projectId: conn.project_id, principal: scope.principal, userId: conn.user_id, endUserExternalId: conn.end_user_id, environment: conn.environment };
  }

  private audit(trx: Kysely<Database>, scope: Scope, meta: AuditMeta, eventType: string, resourceId: string, action: string, statusCode: number, payload: Record<string, unknown> = {}) {
    meta.audit.written = true;
    return writeAudit(trx, {
      ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal),
      eventType, category: 'data', resourceType: eventType.startsWith('crawler') ? 'crawl_job' : 'integration', resourceId, action, status: 'success', statusCode, payload,
    });
  }
}
