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
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const id = `int_${randomBytes(12).toString('hex')}`;
    const now = this.deps.clock.now();
    const task = this.syncTask(scope.tenantId, id, 'initial');
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('integration_connections').values({
        id, tenant_id: scope.tenantId, project_id: projectId, provider, user_id: userId, end_user_id: input.end_user_id,
        environment: scope.principal.environment, token_ciphertext: seal(keys.dataKey, input.access_token, tokenAad(scope.tenantId, id)),
        options: JSON.stringify(input.options ?? {}), sync_state: JSON.stringify({}), created_by: principalLabel(scope.principal), created_at: now, updated_at: now,
      }).returningAll().executeTakeFirstOrThrow();
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, scope, meta, 'integration.connected', id, 'create', 201, { provider, project_id: projectId });
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
