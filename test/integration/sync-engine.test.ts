import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, runSync, type Connector, type NormalizedObject, type PageResult } from '#shared/integrations/index.ts';
import { createGuardedHttp } from '#shared/integrations/guarded-http.ts';
import type { Scope } from '#shared/services/scope.ts';
import { enqueueTasks } from '#shared/outbox/index.ts';
import { IntegrationService } from '#shared/services/integration-service.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const issue = (n: number, body: string): NormalizedObject => ({ id: `issue:${n}`, type: 'issue', url: null, content: `Issue ${n}: ${body}`, metadata: {} });

/** A provider in memory: pages of objects, optionally failing once at a page to simulate a crash mid-pass. */
function scriptedConnector(pages: Array<Omit<PageResult, 'nextCursor'>>, options: { crashAtPage?: number } = {}): Connector & { calls: Array<string | null> } {
  const calls: Array<string | null> = [];
  let crashed = false;
  return {
    provider: 'github',
    calls,
    async listPage(ctx, cursor) {
      calls.push(cursor);
      const index = cursor ? Number(cursor) : 0;
      if (options.crashAtPage === index && !crashed) {
        crashed = true;
        throw new Error('connection reset');
      }
      const page = pages[index]!;
      const last = index === pages.length - 1;
      return { ...page, nextCursor: last ? null : String(index + 1), ...(last ? { checkpoint: ctx.passStartedAt } : {}) };
    },
  };
}

describe('sync engine', () => {
  let server: TestServer;
  let tenant: { tenantId: string; projectId: string };
  let scope: Scope;

  beforeAll(async () => {
    server = await startTestServer();
    const t = await server.newTenant('Engine');
    tenant = t;
    scope = { tenantId: t.tenantId, projectId: null, principal: { kind: 'session', tenantId: t.tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner', scopes: ['memories:write'], projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false } };
  });
  afterAll(() => server?.stop());

  const meta = () => ({ requestId: 'test', ipAddress: null, userAgent: 'test', audit: { written: false } });
  const engine = (connector: Connector, settings = {}) => ({
    db: server.app.db.kysely, clock: server.app.clock, memories: server.app.memories, tenantKeys: server.app.tenantKeys,
    http: createGuardedHttp({ allowPrivate: true }), connectors: { ...connectors, github: connector }, baseUrls: { github: 'http://unused.invalid', notion: '', google_drive: '', onedrive: '' }, settings,
  });
  const texts = async (endUser: string) => {
    const userId = await server.app.identity.resolveEndUser(tenant.tenantId, endUser);
    const rows = await server.app.db.kysely.selectFrom('memories').select('text_ciphertext').where('tenant_id', '=', tenant.tenantId).where('user_id', '=', userId).execute();
    return (await server.app.memories.openTexts({ tenantId: tenant.tenantId, userId }, rows)).sort();
  };

  it('resumes from the stored cursor after a failed run, without duplicating the pages already stored', async () => {
    const conn = await server.app.integrations.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'resume' }, meta());
    const connector = scriptedConnector([{ items: [issue(1, 'alpha')] }, { items: [issue(2, 'beta')] }, { items: [issue(3, 'gamma')] }], { crashAtPage: 1 });
    const first = await runSync(engine(connector), tenant.tenantId, conn.id);
    expect(first.status).toBe('error');
    expect(await texts('resume')).toEqual(['Issue 1: alpha']);
    const second = await runSync(engine(connector), tenant.tenantId, conn.id);
    expect(second).toMatchObject({ status: 'completed', objects: 2, created: 2 });
    expect(connector.calls).toEqual([null, '1', '1', '2']);
    expect(await texts('resume')).toEqual(['Issue 1: alpha', 'Issue 2: beta', 'Issue 3: gamma']);
  });

  it('replaces the memories of an edited object and removes those of a deleted one', async () => {
    const conn = await server.app.integrations.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'edits' }, meta());
    await runSync(engine(scriptedConnector([{ items: [issue(1, 'first wording'), issue(2, 'to be deleted')] }])), tenant.tenantId, conn.id);
    expect(await texts('edits')).toEqual(['Issue 1: first wording', 'Issue 2: to be deleted']);
    const outcome = await runSync(engine(scriptedConnector([{ items: [issue(1, 'second wording')], deletedIds: ['issue:2'] }])), tenant.tenantId, conn.id);
    expect(outcome).toMatchObject({ status: 'completed', created: 1, removed: 2 });
    expect(await texts('edits')).toEqual(['Issue 1: second wording']);
  });

  it('stops when the rate-limit budget reaches 0 and reschedules at its reset, keeping the cursor', async () => {
    const conn = await server.app.integrations.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'budget' }, meta());
    const resetAt = new Date(Date.now() + 3_600_000);
    const connector = scriptedConnector([{ items: [issue(1, 'one')], rateLimit: { remaining: 0, resetAt } }, { items: [issue(2, 'two')] }]);
    const outcome = await runSync(engine(connector), tenant.tenantId, conn.id);
    expect(outcome).toEqual({ status: 'rate_limited', retryAt: resetAt });
    const row = await server.app.db.kysely.selectFrom('integration_connections').selectAll().where('id', '=', conn.id).executeTakeFirstOrThrow();
    expect(row.status).toBe('rate_limited');
    expect(new Date(row.next_sync_at!).toISOString()).toBe(resetAt.toISOString());
    expect(row.sync_state.cursor).toBe('1');
    expect(await texts('budget')).toEqual(['Issue 1: one']);
  });

  it('hands the rest of a long pass to the next run after maxPagesPerRun pages', async () => {
    const conn = await server.app.integrations.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'long' }, meta());
    const connector = scriptedConnector([1, 2, 3, 4, 5].map((n) => ({ items: [issue(n, `page ${n}`)] })));
    expect((await runSync(engine(connector, { maxPagesPerRun: 2 }), tenant.tenantId, conn.id)).status).toBe('partial');
    const row = await server.app.db.kysely.selectFrom('integration_connections').select(['next_sync_at', 'status']).where('id', '=', conn.id).executeTakeFirstOrThrow();
    expect(row.status).toBe('active');
    expect(row.next_sync_at).not.toBeNull();
    expect((await runSync(engine(connector, { maxPagesPerRun: 2 }), tenant.tenantId, conn.id)).status).toBe('partial');
    expect((await runSync(engine(connector, { maxPagesPerRun: 2 }), tenant.tenantId, conn.id)).status).toBe('completed');
    expect(await texts('long')).toHaveLength(5);
  });

  it('queues the continuation of a pass cut short by the page budget, which the worker runs to the end', async () => {
    const { app } = server;
    const connector = scriptedConnector([1, 2, 3].map((n) => ({ items: [issue(n, `chained ${n}`)] })));
    const service = new IntegrationService({
      db: app.db.kysely, clock: app.clock, tenantKeys: app.tenantKeys, identity: app.identity, memories: app.memories, http: createGuardedHttp({ allowPrivate: true }),
      outbox: { enqueue: async (trx, tasks) => { await enqueueTasks(trx, tasks); }, relay: async () => {}, settle: async () => {} },
      engine: { connectors: { ...connectors, github: connector }, baseUrls: { github: '', notion: '', google_drive: '', onedrive: '' }, settings: { maxPagesPerRun: 1 } },
    });
    const conn = await service.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'chain' }, meta());
    const queued = () => app.db.kysely.selectFrom('outbox').select(['task_id', 'payload']).where('family', '=', 'integration-sync').where('relayed_at', 'is', null).execute();
    for (let run = 1; run <= 3; run++) {
      const outcome = await service.sync(tenant.tenantId, conn.id);
      expect(outcome.status).toBe(run < 3 ? 'partial' : 'completed');
    }
    const continuations = (await queued()).filter((r) => JSON.stringify(r.payload).includes('continue') && JSON.stringify(r.payload).includes(conn.id));
    expect(continuations).toHaveLength(2);
    expect(await texts('chain')).toEqual(['Issue 1: chained 1', 'Issue 2: chained 2', 'Issue 3: chained 3']);
  });

  it('lets only one run hold a connection at a time', async () => {
    const conn = await server.app.integrations.connect(scope, 'github', { access_token: 'ghp_x', end_user_id: 'lease' }, meta());
    await server.app.db.kysely.updateTable('integration_connections').set({ lease_until: new Date(Date.now() + 60_000) }).where('id', '=', conn.id).execute();
    expect(await runSync(engine(scriptedConnector([{ items: [issue(1, 'x')] }])), tenant.tenantId, conn.id)).toEqual({ status: 'busy' });
    expect(await runSync(engine(scriptedConnector([{ items: [] }])), 'tenant-that-does-not-own-it', conn.id)).toEqual({ status: 'missing' });
  });
});
