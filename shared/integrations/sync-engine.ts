import type { Logger } from '@aws-lambda-powertools/logger';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { openText } from '../crypto/aead.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import type { Clock } from '../ports/clock.ts';
import type { MemoryService } from '../services/memory-service.ts';
import type { EndUserScope } from '../services/scope.ts';
import type { GuardedHttp } from './guarded-http.ts';
import { chunkObject, ingestChunks, integrationPrincipal, workerMeta } from './ingest.ts';
import { ProviderAuthError, ProviderRateLimitError, type Connector, type PageResult, type Provider } from './types.ts';

export interface SyncEngineDeps {
  db: Kysely<Database>;
  clock: Clock;
  memories: MemoryService;
  tenantKeys: TenantKeyService;
  http: GuardedHttp;
  connectors: Record<Provider, Connector>;
  baseUrls: Record<Provider, string>;
  logger?: Logger;
  settings?: Partial<SyncSettings>;
}

export interface SyncSettings {
  /** pages one run fetches before it hands the rest to the next run (bounded Lambda time) */
  maxPagesPerRun: number;
  /** a run starts no new page after this long (the worker Lambda times out at 300 s) */
  maxRunMs: number;
  /** how long a run holds the connection; a crashed run's lease expires */
  leaseMs: number;
  /** time between incremental syncs of a healthy connection */
  intervalMs: number;
  /** wait after a provider failure that is neither auth nor rate limit */
  errorRetryMs: number;
}

export const SYNC_DEFAULTS: SyncSettings = { maxPagesPerRun: 25, maxRunMs: 200_000, leaseMs: 10 * 60_000, intervalMs: 15 * 60_000, errorRetryMs: 5 * 60_000 };

export type SyncOutcome =
  | { status: 'completed' | 'partial'; objects: number; created: number; removed: number }
  | { status: 'rate_limited'; retryAt: Date }
  | { status: 'error'; error: string }
  | { status: 'busy' | 'missing' };

/** The AEAD associated data of a connection's token: a sealed token moved to another row does not open. */
export const tokenAad = (tenantId: string, connectionId: string) => `integration-token:${tenantId}:${connectionId}`;

/**
 * One sync run of a connection: claims it (a lease, so two runs never interleave), pages the connector
 * from the stored cursor, ingests each page and stores the cursor after it, so a crash resumes where it
 * stopped. A finished pass stores the connector's checkpoint: the next pass is incremental. Rate limits
 * reschedule the connection (`next_sync_at`) instead of sleeping; a refused token marks it errored.
 */
export async function runSync(deps: SyncEngineDeps, tenantId: string, connectionId: string): Promise<SyncOutcome> {
  const settings = { ...SYNC_DEFAULTS, ...deps.settings };
  const { db, clock } = deps;
  const now = clock.now();
  const conn = await db.updateTable('integration_connections')
    .set({ status: 'syncing', lease_until: new Date(now.getTime() + settings.leaseMs), last_sync_started_at: now, updated_at: now })
    .where('tenant_id', '=', tenantId).where('id', '=', connectionId)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .returningAll().executeTakeFirst();
  if (!conn) {
    const exists = await db.selectFrom('integration_connections').select('id').where('tenant_id', '=', tenantId).where('id', '=', connectionId).executeTakeFirst();
    return { status: exists ? 'busy' : 'missing' };
  }
  const provider = conn.provider as Provider;
  const release = (set: Record<string, unknown>) => db.updateTable('integration_connections')
    .set({ lease_until: null, updated_at: clock.now(), ...set }).where('tenant_id', '=', tenantId).where('id', '=', connectionId).execute();

  const keys = await deps.tenantKeys.forTenant(tenantId);
  const token = openText(keys.dataKey, conn.token_ciphertext, tokenAad(tenantId, connectionId));
  const scope: EndUserScope = {
    tenantId, projectId: conn.project_id, principal: integrationPrincipal(tenantId, `integration:${connectionId}`),
    userId: conn.user_id, endUserExternalId: conn.end_user_id, environment: conn.environment,
  };
  const runId = `sync-${connectionId}-${now.getTime()}`;
  const state = conn.sync_state ?? {};
  let cursor = state.cursor ?? null;
  const passStartedAt = state.pass_started_at ?? now.toISOString();
  const ctx = { http: deps.http, token, baseUrl: deps.baseUrls[provider], options: conn.options ?? {}, checkpoint: state.checkpoint ?? null, passStartedAt };
  const totals = { objects: 0, created: 0, removed: 0 };

  try {
    const started = performance.now();
    for (let pageNo = 0; pageNo < settings.maxPagesPerRun && performance.now() - started < settings.maxRunMs; pageNo++) {
      const page = await deps.connectors[provider].listPage(ctx, cursor);
      const counts = await ingestPage(deps, scope, connectionId, provider, page, () => workerMeta(runId, `memorysync-integration-${provider}`));
      totals.objects += page.items.length;
      totals.created += counts.created;
      totals.removed += counts.removed;
      cursor = page.nextCursor;
      const done = cursor === null;
      const nextState = done ? { cursor: null, checkpoint: page.checkpoint ?? passStartedAt, pass_started_at: null } : { cursor, checkpoint: state.checkpoint ?? null, pass_started_at: passStartedAt };
      await db.updateTable('integration_connections').set({
        sync_state: JSON.stringify(nextState),
        objects_synced: sql`objects_synced + ${page.items.length}`,
        memories_created: sql`memories_created + ${counts.created}`,
        updated_at: clock.now(),
      }).where('tenant_id', '=', tenantId).where('id', '=', connectionId).execute();
      if (done) {
        const at = clock.now();
        await release({ status: 'active', last_sync_at: at, last_error: null, next_sync_at: new Date(at.getTime() + settings.intervalMs) });
        return { status: 'completed', ...totals };
      }
      if (page.rateLimit && page.rateLimit.remaining === 0) {
        const retryAt = page.rateLimit.resetAt ?? new Date(clock.now().getTime() + 60_000);
        await release({ status: 'rate_limited', next_sync_at: retryAt, last_error: 'rate limit budget spent; resumes at reset' });
        return { status: 'rate_limited', retryAt };
      }
    }
    // More pages remain: due again at once, the poll job (or another "sync now") continues from the cursor.
    await release({ status: 'active', next_sync_at: clock.now(), last_error: null });
    return { status: 'partial', ...totals };
  } catch (error) {
    if (error instanceof ProviderRateLimitError) {
      await release({ status: 'rate_limited', next_sync_at: error.retryAt, last_error: error.message });
      deps.logger?.info('integration sync rate limited; rescheduled', { connectionId, provider, retryAt: error.retryAt.toISOString() });
      return { status: 'rate_limited', retryAt: error.retryAt };
    }
    const message = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 500);
    // A refused token needs a new connect; other failures are retried by the poll job later.
    const next = error instanceof ProviderAuthError ? null : new Date(clock.now().getTime() + settings.errorRetryMs);
    await release({ status: 'error', last_error: message, next_sync_at: next });
    deps.logger?.warn('integration sync failed', { connectionId, provider, error: message });
    return { status: 'error', error: message };
  }
}

/** Ingests one page: new chunks become memories, chunks of edited or deleted objects are removed. */
async function ingestPage(deps: SyncEngineDeps, scope: EndUserScope, connectionId: string, provider: Provider, page: PageResult, meta: () => ReturnType<typeof workerMeta>): Promise<{ created: number; removed: number }> {
  const { db } = deps;
  const chunked = page.items.map((o) => chunkObject(o));
  const objectIds = [...new Set([...page.items.map((o) => o.id), ...(page.deletedIds ?? [])])];
  if (objectIds.length === 0) return { created: 0, removed: 0 };
  const existing = await db.selectFrom('integration_items').select(['item_key', 'object_id', 'memory_id'])
    .where('connection_id', '=', connectionId).where('object_id', 'in', objectIds).execute();
  const existingKeys = new Set(existing.map((e) => e.item_key));
  const wanted = new Set(chunked.flatMap((c) => c.chunks.map((k) => k.key)));
  const stale = existing.filter((e) => !wanted.has(e.item_key));

  let removed = 0;
  if (stale.length) {
    const ids = stale.map((s) => s.memory_id).filter((id): id is number => id !== null).map(Number);
    removed = (await deps.memories.delete(scope, ids, meta(), 'integration.item_removed')).length;
    await db.deleteFrom('integration_items').where('connection_id', '=', connectionId).where('item_key', 'in', stale.map((s) => s.item_key)).execute();
  }
  const fresh = chunked.map((c) => ({ ...c, chunks: c.chunks.filter((k) => !existingKeys.has(k.key)) })).filter((c) => c.chunks.length > 0);
  if (fresh.length === 0) return { created: 0, removed };
  const result = await ingestChunks({
    db, memories: deps.memories, scope, source: provider, idempotencyPrefix: `int:${connectionId}`, meta,
    metadata: { integration: { connection_id: connectionId, provider } },
  }, fresh);
  if (result.recorded.length) {
    await db.insertInto('integration_items')
      .values(result.recorded.map((r) => ({ connection_id: connectionId, tenant_id: scope.tenantId, item_key: r.key, object_id: r.objectId, chunk_index: r.chunkIndex, memory_id: r.memoryId })))
      .onConflict((oc) => oc.columns(['connection_id', 'item_key']).doNothing())
      .execute();
  }
  return { created: result.created, removed };
}
