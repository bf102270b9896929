import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { keyWithScopes, sessionWithRole, bearer } from '../support/recall-helpers.ts';
import { fixture, startProviderServer, type ProviderServer } from '../support/provider-server.ts';
import { GITHUB_TOKEN, githubApi } from '../support/github-api.ts';

/** Relays what the outbox holds and runs the local queue until nothing is left. */
async function deliverAll(server: TestServer): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const { relayed } = await server.app.relay.relayNow();
    await server.queue!.runUntilIdle();
    if (relayed === 0) return;
  }
}

const count = async (server: TestServer, table: 'memories' | 'integration_connections' | 'audit_logs', where: (q: any) => any = (q) => q) => {
  const row = await where(server.app.db.kysely.selectFrom(table).select((eb: any) => eb.fn.countAll().as('n'))).executeTakeFirstOrThrow();
  return Number(row.n);
};

describe('integrations over HTTP against a local GitHub', () => {
  let server: TestServer;
  let gh: ProviderServer;
  let tenant: { apiKey: string; tenantId: string; projectId: string };
  let other: { apiKey: string; tenantId: string; projectId: string };
  let connectionId: string;
  const githubMemories = () => count(server, 'memories', (q) => q.where('tenant_id', '=', tenant.tenantId).where('source', '=', 'github'));

  beforeAll(async () => {
    gh = await startProviderServer(githubApi());
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true', INTEGRATION_GITHUB_API_URL: gh.url });
    tenant = await server.newTenant('Integrations A');
    other = await server.newTenant('Integrations B');
  });
  afterAll(async () => {
    await server?.stop();
    await gh?.close();
  });

  it('connects with a token that is stored encrypted and never returned, and writes one audit row', async () => {
    const res = await server.call('POST', '/api/v1/integrations/github/connect', {
      headers: keyHeaders(tenant.apiKey), body: { access_token: GITHUB_TOKEN, end_user_id: 'alice' },
    });
    expect(res.status).toBe(201);
    connectionId = res.body.id;
    expect(res.body).toMatchObject({ provider: 'github', end_user_id: 'alice', project_id: tenant.projectId, status: 'active' });
    expect(JSON.stringify(res.body)).not.toContain(GITHUB_TOKEN);
    const row = await server.app.db.kysely.selectFrom('integration_connections').select('token_ciphertext').where('id', '=', connectionId).executeTakeFirstOrThrow();
    expect(Buffer.from(row.token_ciphertext).includes(Buffer.from(GITHUB_TOKEN))).toBe(false);
    expect(await count(server, 'audit_logs', (q) => q.where('tenant_id', '=', tenant.tenantId).where('event_type', '=', 'integration.connected'))).toBe(1);
  });

  it('runs the initial sync: GitHub objects become memories with source github that a query finds', async () => {
    await deliverAll(server);
    const status = await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ status: 'active', last_error: null, initial_sync_complete: true, counts: { objects_synced: 5, memories_created: 5 } });
    expect(status.body.last_sync_at).not.toBeNull();
    expect(await githubMemories()).toBe(5);

    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(tenant.apiKey, 'alice'), body: { query: 'login page crashes when the password has a percent sign', k: 3 } });
    expect(q.status).toBe(200);
    expect(q.body.memories[0].text).toContain('Found a bug');
    expect(q.body.memories[0].source).toBe('github');
    expect(q.body.memories[0].metadata).toMatchObject({ object_id: 'issue:octocat/Hello-World#1347', url: 'https://github.com/octocat/Hello-World/issues/1347' });
    // Another end user of the same tenant sees none of alice's synced memories.
    const bob = await server.call('POST', '/memory/query', { headers: keyHeaders(tenant.apiKey, 'bob'), body: { query: 'login page bug', k: 3 } });
    expect(bob.body.memories).toHaveLength(0);
  });

  it('re-syncs incrementally and adds nothing when nothing changed', async () => {
    gh.requests.length = 0;
    const res = await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: keyHeaders(tenant.apiKey) });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id: connectionId, status: 'queued' });
    await deliverAll(server);
    expect(await githubMemories()).toBe(5);
    const issues = gh.requests.find((r) => r.url.startsWith('/repos/octocat/Hello-World/issues'))!;
    expect(new URL(issues.url, 'http://x').searchParams.get('since')).not.toBeNull();
  });

  it('reschedules on 429 with Retry-After instead of failing, and the poll job resumes it when due', async () => {
    gh.handle(() => ({ status: 429, headers: { 'retry-after': '120' }, body: fixture('github', 'error-429-secondary') }));
    const before = Date.now();
    await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: keyHeaders(tenant.apiKey) });
    await deliverAll(server);
    const after = Date.now();
    const limited = await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) });
    expect(limited.body.status).toBe('rate_limited');
    const next = Date.parse(limited.body.next_sync_at);
    expect(next).toBeGreaterThanOrEqual(before + 119_000);
    expect(next).toBeLessThanOrEqual(after + 121_000);
    // Nothing is due yet: the poll enqueues nothing.
    expect(await server.app.integrations.enqueueDue()).toBe(0);

    gh.handle(githubApi());
    await server.app.db.kysely.updateTable('integration_connections').set({ next_sync_at: new Date(Date.now() - 1000) }).where('id', '=', connectionId).execute();
    expect((await server.scheduler.runJob('integration-poll')).status).toBe('ran');
    await deliverAll(server);
    const resumed = await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) });
    expect(resumed.body).toMatchObject({ status: 'active', last_error: null });
    expect(await githubMemories()).toBe(5);
  });

  it('marks the connection errored when the provider answers 401 and stops polling it', async () => {
    gh.handle(githubApi({ token: 'ghp_rotated_elsewhere' }));
    await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: keyHeaders(tenant.apiKey) });
    await deliverAll(server);
    const res = await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) });
    expect(res.body.status).toBe('error');
    expect(res.body.last_error).toContain('401');
    expect(res.body.next_sync_at).toBeNull();
    gh.handle(githubApi());
  });

  it('hides the connection from another tenant: not listed, and sync or delete answer 404', async () => {
    const list = await server.call('GET', '/api/v1/integrations', { headers: keyHeaders(other.apiKey) });
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([]);
    expect((await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(other.apiKey) })).status).toBe(404);
    expect((await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: keyHeaders(other.apiKey) })).status).toBe(404);
    expect((await server.call('DELETE', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(other.apiKey) })).status).toBe(404);
    const mine = await server.call('GET', '/api/v1/integrations', { headers: keyHeaders(tenant.apiKey) });
    expect(mine.body.items.map((c: any) => c.id)).toEqual([connectionId]);
  });

  it('refuses callers without credentials (401), without the scope or role (403), and bad input (422) without writing', async () => {
    const body = { access_token: GITHUB_TOKEN, end_user_id: 'alice' };
    expect((await server.call('GET', '/api/v1/integrations')).status).toBe(401);
    expect((await server.call('POST', '/api/v1/integrations/github/connect', { body })).status).toBe(401);
    const readOnly = await keyWithScopes(server, tenant.tenantId, ['memories:read']);
    const before = await count(server, 'integration_connections');
    expect((await server.call('POST', '/api/v1/integrations/github/connect', { headers: keyHeaders(readOnly), body })).status).toBe(403);
    expect((await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: keyHeaders(readOnly) })).status).toBe(403);
    expect((await server.call('GET', '/api/v1/integrations', { headers: keyHeaders(readOnly) })).status).toBe(200);
    const member = await sessionWithRole(server, tenant.tenantId, 'member');
    const viewer = await sessionWithRole(server, tenant.tenantId, 'viewer');
    expect((await server.call('POST', '/api/v1/integrations/github/connect', { headers: bearer(member), body })).status).toBe(403);
    expect((await server.call('DELETE', `/api/v1/integrations/${connectionId}`, { headers: bearer(member) })).status).toBe(403);
    expect((await server.call('POST', `/api/v1/integrations/${connectionId}/sync`, { headers: bearer(viewer) })).status).toBe(403);
    expect((await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: bearer(viewer) })).status).toBe(200);

    const unknown = await server.call('POST', '/api/v1/integrations/dropbox/connect', { headers: keyHeaders(tenant.apiKey), body });
    expect(unknown.status).toBe(422);
    const noToken = await server.call('POST', '/api/v1/integrations/github/connect', { headers: keyHeaders(tenant.apiKey), body: { end_user_id: 'alice' } });
    expect(noToken.status).toBe(422);
    expect(noToken.body.error.code).toBe('INTEGRATION_OAUTH_NOT_CONFIGURED');
    const foreignProject = await server.call('POST', '/api/v1/integrations/github/connect', { headers: keyHeaders(tenant.apiKey), body: { ...body, project_id: other.projectId } });
    expect(foreignProject.status).toBe(404);
    expect((await server.call('GET', '/api/v1/integrations/int_nope', { headers: keyHeaders(tenant.apiKey) })).status).toBe(422);
    expect(await count(server, 'integration_connections')).toBe(before);
  });

  it('disconnects keeping the memories, and with ?purge=true removes exactly what that connection brought in', async () => {
    const kept = await server.call('DELETE', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) });
    expect(kept.status).toBe(200);
    expect(kept.body).toEqual({ id: connectionId, deleted: true, memories_purged: 0 });
    expect((await server.call('GET', `/api/v1/integrations/${connectionId}`, { headers: keyHeaders(tenant.apiKey) })).status).toBe(404);
    expect(await githubMemories()).toBe(5);

    const second = await server.call('POST', '/api/v1/integrations/github/connect', { headers: keyHeaders(tenant.apiKey), body: { access_token: GITHUB_TOKEN, end_user_id: 'carol', options: { repos: ['octocat/Hello-World'] } } });
    expect(second.status).toBe(201);
    await deliverAll(server);
    expect(await githubMemories()).toBe(9); // carol's copy: issues, pull request, commit, discussion (no repository listing)
    const purged = await server.call('DELETE', `/api/v1/integrations/${second.body.id}?purge=true`, { headers: keyHeaders(tenant.apiKey) });
    expect(purged.body).toMatchObject({ deleted: true, memories_purged: 4 });
    expect(await githubMemories()).toBe(5);
    expect(await count(server, 'audit_logs', (q) => q.where('tenant_id', '=', tenant.tenantId).where('event_type', 'in', ['integration.purged', 'integration.disconnected']))).toBe(2);
  });
});
