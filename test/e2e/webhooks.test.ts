import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostResolver } from '#shared/net/ssrf-guard.ts';
import { addMember, bearer, countRows, signupOwner } from '../support/accounts.ts';
import { startReceiver, type HttpReceiver } from '../support/http-receiver.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/**
 * A receiver's check, written from docs/webhooks-siem.md only: `X-MemorySync-Signature` is `sha256=` +
 * hex HMAC-SHA256 of `"{X-MemorySync-Timestamp}.{raw body}"` under the endpoint secret.
 */
function verifySignature(secret: string, headers: IncomingHttpHeaders, rawBody: string): boolean {
  const timestamp = String(headers['x-memorysync-timestamp'] ?? '');
  const received = String(headers['x-memorysync-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
  return received.length === expected.length && timingSafeEqual(Buffer.from(received), Buffer.from(expected));
}

/** Time the app sees; retries become due when a test moves it, never by waiting. */
function movableClock() {
  let offsetMs = 0;
  return { now: () => new Date(Date.now() + offsetMs), advance: (ms: number) => { offsetMs += ms; } };
}

const HOUR = 3_600_000;

/** Relays what the outbox holds (the outbox sweep's job) and runs the local queue until nothing is left. */
async function deliverAll(server: TestServer): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const { relayed } = await server.app.relay.relayNow();
    // jumps the queue's time over the delays of attempts deferred by the per-endpoint cap
    await server.queue!.runUntilIdle({ advanceTime: true });
    if (relayed === 0) return;
  }
}

/** An organisation with an owner session and an API key that may manage webhooks. */
async function newOrg(server: TestServer, label: string) {
  const owner = await signupOwner(server, label);
  const key = await server.call('POST', '/org/api-keys', {
    headers: bearer(owner.token), body: { name: 'hooks', scopes: ['memories:read', 'memories:write', 'projects:read', 'webhooks:manage'] },
  });
  if (key.status !== 201) throw new Error(`key creation failed: ${key.status}`);
  return { owner, key: key.body.key as string, tenantId: owner.tenantId };
}

const addMemory = (server: TestServer, key: string, text: string) =>
  server.call('POST', '/memory/add', { headers: keyHeaders(key, 'alice'), body: { text } });

async function deliveriesOf(server: TestServer, key: string, webhookId: string) {
  const res = await server.call('GET', `/org/webhooks/${webhookId}/deliveries`, { headers: keyHeaders(key) });
  expect(res.status).toBe(200);
  return res.body.items as any[];
}

describe('webhooks over HTTP (private targets allowed for local receivers)', () => {
  let server: TestServer;
  const clock = movableClock();
  const receivers: HttpReceiver[] = [];
  const receiver = async (fallback = 200) => {
    const r = await startReceiver(fallback);
    receivers.push(r);
    return r;
  };
  const createHook = (key: string, body: Record<string, unknown>) => server.call('POST', '/org/webhooks', { headers: keyHeaders(key), body });

  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true' }, { clock });
  });
  afterAll(async () => {
    await server.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('delivers memory.created, signed so that a receiver written from the docs verifies it', async () => {
    const org = await newOrg(server, 'wh-basic');
    const r = await receiver();
    const created = await createHook(org.key, { name: 'Memories', url: `${r.url}/hook`, events: ['memory.created'], description: 'ours' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Memories', url: `${r.url}/hook`, events: ['memory.created'], active: true, retry_config: { max_attempts: 5 }, signature_config: { algorithm: 'sha256' } });
    const secret = created.body.secret as string;
    expect(secret).toMatch(/^whsec_/);
    const fetched = await server.call('GET', `/org/webhooks/${created.body.id}`, { headers: keyHeaders(org.key) });
    expect(fetched.body.secret).toBeUndefined();
    expect(JSON.stringify(fetched.body)).not.toContain(secret);

    const add = await addMemory(server, org.key, 'The quarterly review is on the ninth of May.');
    expect(add.status).toBe(201);
    await deliverAll(server);

    expect(r.requests).toHaveLength(1);
    const [req] = r.requests;
    expect(req!.path).toBe('/hook');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['x-memorysync-event']).toBe('memory.created');
    expect(req!.headers['x-memorysync-delivery']).toMatch(/^whd_/);
    expect(verifySignature(secret, req!.headers, req!.body)).toBe(true);
    expect(verifySignature(secret, req!.headers, req!.body.replace('memory.created', 'memory.deleted'))).toBe(false);
    expect(verifySignature('whsec_wrong', req!.headers, req!.body)).toBe(false);
    const payload = JSON.parse(req!.body);
    expect(payload).toMatchObject({ event: 'memory.created', tenant_id: org.tenantId, data: { id: add.body.id, end_user_id: 'alice' } });
    expect(payload.id).toMatch(/^evt_/);
    expect(Number.isNaN(Date.parse(payload.created_at))).toBe(false);
    // the memory text never leaves in a webhook
    expect(req!.body).not.toContain('quarterly review');

    const log = await deliveriesOf(server, org.key, created.body.id);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 1, event: 'memory.created', event_id: payload.id, last_status_code: 200 });
    expect(log[0].attempt_log).toEqual([expect.objectContaining({ attempt: 1, status_code: 200, success: true, error: null })]);
    expect(log[0].attempt_log[0].latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('sends only subscribed events, only to endpoints of the same tenant and matching project', async () => {
    const org = await newOrg(server, 'wh-filter');
    const other = await newOrg(server, 'wh-filter-other');
    const subscribed = await receiver();
    const unsubscribed = await receiver();
    const otherProject = await receiver();
    const otherTenant = await receiver();
    const project = await server.call('POST', '/org/projects', { headers: bearer(org.owner.token), body: { name: 'Elsewhere' } });
    expect((await createHook(org.key, { name: 'a', url: subscribed.url, events: ['memory.created', 'memory.deleted'] })).status).toBe(201);
    expect((await createHook(org.key, { name: 'b', url: unsubscribed.url, events: ['memory.deleted'] })).status).toBe(201);
    expect((await createHook(org.key, { name: 'c', url: otherProject.url, events: ['memory.created'], project_id: project.body.project_id })).status).toBe(201);
    expect((await createHook(other.key, { name: 'd', url: otherTenant.url, events: ['memory.created'] })).status).toBe(201);

    await addMemory(server, org.key, 'A memory that only the first endpoint hears about.');
    await deliverAll(server);
    expect(subscribed.requests.map((q) => q.headers['x-memorysync-event'])).toEqual(['memory.created']);
    expect(unsubscribed.requests).toHaveLength(0);
    expect(otherProject.requests).toHaveLength(0);
    expect(otherTenant.requests).toHaveLength(0);
  });

  it('retries a failing target with backoff: three failures then success is ONE delivered event in four attempts', async () => {
    const org = await newOrg(server, 'wh-retry');
    const r = await receiver();
    r.script = [500, 503, 502];
    const hook = await createHook(org.key, { name: 'Flaky', url: r.url, events: ['memory.created'] });
    await addMemory(server, org.key, 'Retries should deliver this exactly once.');
    await deliverAll(server);
    expect(r.requests).toHaveLength(1);

    const [first] = await deliveriesOf(server, org.key, hook.body.id);
    expect(first).toMatchObject({ status: 'retrying', attempts: 1, last_status_code: 500, last_error: 'HTTP 500' });
    // first retry after 1 minute ±20 % jitter
    const delay = Date.parse(first.next_attempt_at) - Date.parse(first.attempt_log[0].created_at);
    expect(delay).toBeGreaterThanOrEqual(48_000);
    expect(delay).toBeLessThanOrEqual(72_000);

    // Not due yet: the sweep leaves it alone.
    expect((await server.scheduler.runJob('webhook-retry-sweep')).status).toBe('ran');
    await deliverAll(server);
    expect(r.requests).toHaveLength(1);

    for (let i = 0; i < 4; i++) {
      clock.advance(HOUR);
      await server.scheduler.runJob('webhook-retry-sweep');
      await deliverAll(server);
    }
    expect(r.requests.map((q) => q.answered)).toEqual([500, 503, 502, 200]);
    expect(r.requests.filter((q) => q.answered === 200)).toHaveLength(1);
    expect(new Set(r.requests.map((q) => q.headers['x-memorysync-delivery'])).size).toBe(1);
    expect(new Set(r.requests.map((q) => JSON.parse(q.body).id)).size).toBe(1);

    const [done] = await deliveriesOf(server, org.key, hook.body.id);
    expect(done).toMatchObject({ status: 'delivered', attempts: 4, next_attempt_at: null });
    expect(done.attempt_log.map((a: any) => [a.attempt, a.status_code, a.success])).toEqual([[1, 500, false], [2, 503, false], [3, 502, false], [4, 200, true]]);
  });

  it('dead-letters at once on 410, and a replay delivers it once the target is back', async () => {
    const org = await newOrg(server, 'wh-gone');
    const r = await receiver(410);
    const hook = await createHook(org.key, { name: 'Gone', url: r.url, events: ['memory.created'] });
    await addMemory(server, org.key, 'This one meets a 410 on its first attempt.');
    await deliverAll(server);
    const [dead] = await deliveriesOf(server, org.key, hook.body.id);
    expect(dead).toMatchObject({ status: 'dead_lettered', attempts: 1, last_status_code: 410, next_attempt_at: null });
    expect(dead.last_error).toContain('410');

    clock.advance(24 * HOUR);
    await server.scheduler.runJob('webhook-retry-sweep');
    await deliverAll(server);
    expect(r.requests).toHaveLength(1);

    r.fallback = 200;
    const replay = await server.call('POST', `/org/webhooks/deliveries/${dead.id}/replay`, { headers: keyHeaders(org.key) });
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ status: 'queued', delivery_id: dead.id, attempt: 2 });
    await deliverAll(server);
    expect(r.requests.map((q) => q.answered)).toEqual([410, 200]);
    expect(r.requests[1]!.body).toBe(r.requests[0]!.body);
    const [replayed] = await deliveriesOf(server, org.key, hook.body.id);
    expect(replayed).toMatchObject({ status: 'delivered', attempts: 2 });

    const again = await server.call('POST', `/org/webhooks/deliveries/${dead.id}/replay`, { headers: keyHeaders(org.key) });
    expect(again.status).toBe(202);
  });

  it('dead-letters after the endpoint retry ceiling', async () => {
    const org = await newOrg(server, 'wh-ceiling');
    const r = await receiver(500);
    const hook = await createHook(org.key, { name: 'Two retries', url: r.url, events: ['memory.created'], retry_config: { max_attempts: 2, backoff_seconds: 10 } });
    await addMemory(server, org.key, 'Three attempts and then the dead letter box.');
    await deliverAll(server);
    const [first] = await deliveriesOf(server, org.key, hook.body.id);
    const delay = Date.parse(first.next_attempt_at) - Date.parse(first.attempt_log[0].created_at);
    expect(delay).toBeGreaterThanOrEqual(8_000);
    expect(delay).toBeLessThanOrEqual(12_000);
    for (let i = 0; i < 4; i++) {
      clock.advance(HOUR);
      await server.scheduler.runJob('webhook-retry-sweep');
      await deliverAll(server);
    }
    expect(r.requests).toHaveLength(3);
    const [dead] = await deliveriesOf(server, org.key, hook.body.id);
    expect(dead).toMatchObject({ status: 'dead_lettered', attempts: 3 });
    expect(dead.last_error).toContain('retries exhausted');
  });

  it('disables an endpoint after 20 dead-lettered deliveries in a row and sends it nothing more', async () => {
    const org = await newOrg(server, 'wh-disable');
    const r = await receiver(500);
    const hook = await createHook(org.key, { name: 'Broken', url: r.url, events: ['memory.created'], retry_config: { max_attempts: 0 } });
    for (let i = 0; i < 20; i++) await addMemory(server, org.key, `Failure number ${i} for the broken endpoint, unique text.`);
    await deliverAll(server);
    expect(r.requests).toHaveLength(20);
    const disabled = await server.call('GET', `/org/webhooks/${hook.body.id}`, { headers: keyHeaders(org.key) });
    expect(disabled.body).toMatchObject({ active: false, status: 'disabled', disabled_reason: 'consecutive_failures', consecutive_failures: 20 });
    const audit = await server.app.db.kysely.selectFrom('audit_logs').selectAll().where('tenant_id', '=', org.tenantId).where('event_type', '=', 'webhook.auto_disabled').execute();
    expect(audit).toHaveLength(1);

    await addMemory(server, org.key, 'Nothing is sent for this one: the endpoint is disabled.');
    await deliverAll(server);
    expect(r.requests).toHaveLength(20);
    expect(await deliveriesOf(server, org.key, hook.body.id)).toHaveLength(20);
    const test = await server.call('POST', `/org/webhooks/${hook.body.id}/test`, { headers: keyHeaders(org.key) });
    expect(test.status).toBe(409);

    // Re-enabling clears the count and deliveries resume.
    r.fallback = 200;
    const enabled = await server.call('PATCH', `/org/webhooks/${hook.body.id}`, { headers: keyHeaders(org.key), body: { active: true } });
    expect(enabled.body).toMatchObject({ active: true, consecutive_failures: 0, disabled_reason: null });
    await addMemory(server, org.key, 'Delivered again after the endpoint was enabled.');
    await deliverAll(server);
    expect(r.requests.at(-1)!.answered).toBe(200);
  });

  it('sends a webhook.test event on demand, whatever the endpoint subscribes to, with the auth header', async () => {
    const org = await newOrg(server, 'wh-test');
    const r = await receiver();
    const hook = await createHook(org.key, { name: 'T', url: r.url, events: ['api_key.revoked'], auth_header_name: 'X-Customer-Token', auth_header_value: 'tok-123' });
    expect(hook.body).toMatchObject({ auth_header_name: 'X-Customer-Token', has_auth_header: true });
    expect(JSON.stringify(hook.body)).not.toContain('tok-123');
    const stored = await server.app.db.kysely.selectFrom('webhooks').select(['auth_header_value_ciphertext', 'secret_ciphertext']).where('id', '=', hook.body.id).executeTakeFirstOrThrow();
    expect(Buffer.from(stored.auth_header_value_ciphertext!).toString('latin1')).not.toContain('tok-123');
    expect(Buffer.from(stored.secret_ciphertext).toString('latin1')).not.toContain(hook.body.secret);

    const res = await server.call('POST', `/org/webhooks/${hook.body.id}/test`, { headers: keyHeaders(org.key) });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'queued', event: 'webhook.test' });
    await deliverAll(server);
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]!.headers['x-memorysync-event']).toBe('webhook.test');
    expect(r.requests[0]!.headers['x-customer-token']).toBe('tok-123');
    expect(verifySignature(hook.body.secret, r.requests[0]!.headers, r.requests[0]!.body)).toBe(true);
  });

  it('delivers organisation events (api_key.revoked and api_key.created of a rotation) from the outbox too', async () => {
    const org = await newOrg(server, 'wh-org-events');
    const r = await receiver();
    await createHook(org.key, { name: 'Keys', url: r.url, events: ['api_key.revoked', 'api_key.created'] });
    const key = await server.call('POST', '/org/api-keys', { headers: bearer(org.owner.token), body: { name: 'another' } });
    await deliverAll(server);
    r.requests.length = 0;
    const rotated = await server.call('POST', `/org/api-keys/${key.body.id}/rotate`, { headers: bearer(org.owner.token) });
    expect(rotated.status).toBe(201);
    await deliverAll(server);
    expect(r.requests.map((q) => q.headers['x-memorysync-event']).sort()).toEqual(['api_key.created', 'api_key.revoked']);
    expect(r.requests.map((q) => JSON.parse(q.body).tenant_id)).toEqual([org.tenantId, org.tenantId]);
  });

  it('delivers api_key.created on POST /org/api-keys and api_key.revoked on DELETE, signed, with the key facts and never the secret', async () => {
    const org = await newOrg(server, 'wh-key-events');
    const other = await newOrg(server, 'wh-key-events-other');
    // the orgs' own key creations are delivered before any endpoint subscribes
    await deliverAll(server);
    const r = await receiver();
    const hook = await createHook(org.key, { name: 'Keys', url: r.url, events: ['api_key.created', 'api_key.revoked'] });
    const theirs = await receiver();
    await createHook(other.key, { name: 'Theirs', url: theirs.url, events: ['api_key.created', 'api_key.revoked'] });
    const created = await server.call('POST', '/org/api-keys', { headers: bearer(org.owner.token), body: { name: 'ci-bot', environment: 'staging', scopes: ['memories:read'] } });
    expect(created.status).toBe(201);
    await deliverAll(server);
    expect(r.requests.map((q) => q.headers['x-memorysync-event'])).toEqual(['api_key.created']);
    const createdEvent = JSON.parse(r.requests[0]!.body);
    expect(createdEvent).toMatchObject({ event: 'api_key.created', tenant_id: org.tenantId, data: { id: created.body.id, name: 'ci-bot', key_prefix: created.body.key_prefix, environment: 'staging', scopes: ['memories:read'], project_id: null } });
    expect(r.requests[0]!.body).not.toContain(created.body.key);
    expect(verifySignature(hook.body.secret, r.requests[0]!.headers, r.requests[0]!.body)).toBe(true);

    const revoked = await server.call('DELETE', `/org/api-keys/${created.body.id}`, { headers: bearer(org.owner.token) });
    expect(revoked.status).toBe(200);
    // a second revoke (404) and a revoke of another tenant's key change nothing and emit nothing
    expect((await server.call('DELETE', `/org/api-keys/${created.body.id}`, { headers: bearer(org.owner.token) })).status).toBe(404);
    expect((await server.call('DELETE', `/org/api-keys/${created.body.id}`, { headers: bearer(other.owner.token) })).status).toBe(404);
    await deliverAll(server);
    expect(r.requests.map((q) => q.headers['x-memorysync-event'])).toEqual(['api_key.created', 'api_key.revoked']);
    expect(JSON.parse(r.requests[1]!.body)).toMatchObject({ event: 'api_key.revoked', tenant_id: org.tenantId, data: { id: created.body.id, name: 'ci-bot', reason: 'revoked' } });
    expect(theirs.requests).toHaveLength(0);
  });

  describe('management routes: auth, role, scope, tenancy and input', () => {
    let org: Awaited<ReturnType<typeof newOrg>>;
    let other: Awaited<ReturnType<typeof newOrg>>;
    let hookId: string;
    let deliveryId: string;
    let r: HttpReceiver;

    beforeAll(async () => {
      org = await newOrg(server, 'wh-rbac');
      other = await newOrg(server, 'wh-rbac-other');
      r = await receiver(410);
      hookId = (await createHook(org.key, { name: 'R', url: r.url, events: ['memory.created'] })).body.id;
      await addMemory(server, org.key, 'A delivery to look at from other tenants.');
      await deliverAll(server);
      deliveryId = (await deliveriesOf(server, org.key, hookId))[0].id;
    });

    const routes = () => [
      ['POST', '/org/webhooks', { name: 'x', url: r.url, events: ['memory.created'] }],
      ['GET', '/org/webhooks', undefined],
      ['GET', `/org/webhooks/${hookId}`, undefined],
      ['PATCH', `/org/webhooks/${hookId}`, { name: 'renamed' }],
      ['DELETE', `/org/webhooks/${hookId}`, undefined],
      ['GET', `/org/webhooks/${hookId}/deliveries`, undefined],
      ['POST', `/org/webhooks/${hookId}/test`, undefined],
      ['POST', `/org/webhooks/deliveries/${deliveryId}/replay`, undefined],
    ] as const;

    it('answers 401 without credentials on every route', async () => {
      for (const [method, path, body] of routes()) {
        const res = await server.call(method, path, { body });
        expect(res.status, `${method} ${path}`).toBe(401);
      }
    });

    it('answers 403 to an API key without webhooks:manage on every route', async () => {
      const { apiKey } = await server.newTenant();
      for (const [method, path, body] of routes()) {
        const res = await server.call(method, path, { headers: keyHeaders(apiKey), body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe('INSUFFICIENT_SCOPE');
      }
    });

    it('lets members and viewers read but not change (403 on every mutation)', async () => {
      const member = await addMember(server, org.tenantId, 'member');
      const viewer = await addMember(server, org.tenantId, 'viewer');
      const before = await countRows(server, 'webhooks');
      for (const [method, path, body] of routes()) {
        const res = await server.call(method, path, { headers: bearer(member.token), body });
        expect(res.status, `${method} ${path}`).toBe(method === 'GET' ? 200 : 403);
      }
      expect((await server.call('GET', `/org/webhooks/${hookId}`, { headers: bearer(viewer.token) })).status).toBe(200);
      expect(await countRows(server, 'webhooks')).toBe(before);
      const admin = await addMember(server, org.tenantId, 'admin');
      const created = await server.call('POST', '/org/webhooks', { headers: bearer(admin.token), body: { name: 'by admin', url: r.url, events: ['memory.deleted'] } });
      expect(created.status).toBe(201);
    });

    it("hides another tenant's endpoints and deliveries (404, empty list) and changes nothing", async () => {
      const h = keyHeaders(other.key);
      expect((await server.call('GET', '/org/webhooks', { headers: h })).body).toMatchObject({ items: [], total: 0 });
      for (const [method, path, body] of routes().slice(2)) {
        const res = await server.call(method, path, { headers: h, body });
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      const mine = await server.call('GET', `/org/webhooks/${hookId}`, { headers: keyHeaders(org.key) });
      expect(mine.body).toMatchObject({ name: 'R', active: true });
      expect((await deliveriesOf(server, org.key, hookId))[0]).toMatchObject({ status: 'dead_lettered', attempts: 1 });
    });

    it.each([
      [{ name: 'x', url: 'ftp://example.com/hook', events: ['memory.created'] }, 'url'],
      [{ name: 'x', url: 'javascript:alert(1)', events: ['memory.created'] }, 'url'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.nope'] }, 'events'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: [] }, 'events'],
      [{ url: 'http://127.0.0.1/', events: ['memory.created'] }, 'name'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.created'], retry_config: { max_attempts: 99 } }, 'retry_config'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.created'], signature_config: { algorithm: 'md5' } }, 'signature_config'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.created'], auth_header_name: 'X-Memorysync-Signature', auth_header_value: 'v' }, 'auth_header_name'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.created'], auth_header_name: 'X-A' }, 'auth_header_value'],
      [{ name: 'x', url: 'http://127.0.0.1/', events: ['memory.created'], tenant_id: 'org_x' }, ''],
    ])('rejects %j with 422 and writes nothing', async (body, field) => {
      const before = { hooks: await countRows(server, 'webhooks'), outbox: await countRows(server, 'outbox') };
      const res = await server.call('POST', '/org/webhooks', { headers: keyHeaders(org.key), body });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(JSON.stringify(res.body.error)).toContain(field);
      expect({ hooks: await countRows(server, 'webhooks'), outbox: await countRows(server, 'outbox') }).toEqual(before);
    });

    it('answers 404 for a project of another tenant and 422 for malformed ids', async () => {
      const foreign = await server.call('GET', '/org/projects', { headers: keyHeaders(other.key) });
      const res = await server.call('POST', '/org/webhooks', { headers: keyHeaders(org.key), body: { name: 'x', url: r.url, events: ['memory.created'], project_id: foreign.body[0].project_id } });
      expect(res.status).toBe(404);
      expect((await server.call('GET', '/org/webhooks/not-an-id', { headers: keyHeaders(org.key) })).status).toBe(422);
      expect((await server.call('POST', '/org/webhooks/deliveries/whd_x/replay', { headers: keyHeaders(org.key) })).status).toBe(422);
    });

    it('writes exactly one audit row per mutation', async () => {
      const res = await createHook(org.key, { name: 'audited', url: r.url, events: ['memory.created'] });
      const rows = await server.app.db.kysely.selectFrom('audit_logs').selectAll().where('request_id', '=', res.headers.get('x-request-id')!).execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ event_type: 'webhook.created', tenant_id: org.tenantId, resource_id: res.body.id, status: 'success' });
      expect(JSON.stringify(rows[0]!.payload_json)).not.toContain(res.body.secret);
      const del = await server.call('DELETE', `/org/webhooks/${res.body.id}`, { headers: keyHeaders(org.key) });
      expect(del.body).toEqual({ id: res.body.id, deleted: true });
      const delRows = await server.app.db.kysely.selectFrom('audit_logs').selectAll().where('request_id', '=', del.headers.get('x-request-id')!).execute();
      expect(delRows.map((x) => x.event_type)).toEqual(['webhook.deleted']);
      expect((await server.call('GET', `/org/webhooks/${res.body.id}`, { headers: keyHeaders(org.key) })).status).toBe(404);
    });
  });
});

describe('webhooks SSRF guard (private targets NOT allowed)', () => {
  let server: TestServer;
  let r: HttpReceiver;
  const dns: Record<string, string[]> = { 'hooks.customer.test': ['93.184.216.34'] };
  const resolveHost: HostResolver = async (host) => {
    const answers = dns[host];
    if (!answers) throw new Error(`ENOTFOUND ${host}`);
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'false' }, { resolveHost });
    r = await startReceiver();
  });
  afterAll(async () => {
    await server.stop();
    await r.close();
  });

  it.each([
    (port: number) => `http://127.0.0.1:${port}/hook`,
    () => 'http://169.254.169.254/latest/meta-data/',
    () => 'http://[::ffff:127.0.0.1]/',
    () => 'http://10.0.0.5/hook',
    () => 'http://unresolvable.test/hook',
  ])('refuses an internal or unresolvable URL at creation with 422 (%#)', async (urlOf) => {
    const org = await newOrg(server, 'ssrf-create');
    const before = await countRows(server, 'webhooks');
    const res = await server.call('POST', '/org/webhooks', { headers: keyHeaders(org.key), body: { name: 'x', url: urlOf(r.port), events: ['memory.created'] } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(await countRows(server, 'webhooks')).toBe(before);
  });

  it('fails the delivery, without connecting, when the DNS answer moves inside after creation', async () => {
    const org = await newOrg(server, 'ssrf-rebind');
    const created = await server.call('POST', '/org/webhooks', { headers: keyHeaders(org.key), body: { name: 'x', url: `http://hooks.customer.test:${r.port}/hook`, events: ['memory.created'] } });
    expect(created.status).toBe(201);
    dns['hooks.customer.test'] = ['127.0.0.1'];
    await addMemory(server, org.key, 'The target now resolves to loopback.');
    await deliverAll(server);
    expect(r.requests).toHaveLength(0);
    const [delivery] = await deliveriesOf(server, org.key, created.body.id);
    expect(delivery).toMatchObject({ status: 'retrying', attempts: 1, last_status_code: null });
    expect(delivery.attempt_log[0].error).toMatch(/blocked by the SSRF guard: .*loopback/);
    // and a PATCH to an internal URL is refused like a create
    const patch = await server.call('PATCH', `/org/webhooks/${created.body.id}`, { headers: keyHeaders(org.key), body: { url: `http://127.0.0.1:${r.port}/` } });
    expect(patch.status).toBe(422);
  });
});
