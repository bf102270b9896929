import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAudit } from '#shared/services/audit.ts';
import { addMember, bearer, countRows, signupOwner, type Account } from '../support/accounts.ts';
import { startReceiver, type HttpReceiver } from '../support/http-receiver.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const ADMIN_EMAIL = `siem-operator-${Date.now()}@example.com`;

async function auditIds(server: TestServer, tenantId: string): Promise<string[]> {
  const rows = await server.app.db.kysely.selectFrom('audit_logs').select('id').where('tenant_id', '=', tenantId).orderBy('id').execute();
  return rows.map((r) => String(r.id));
}

/** Runs the `siem-forward` job and the queue; `advanceTime` jumps over visibility timeouts so retries run now. */
async function forward(server: TestServer, advanceTime = false): Promise<void> {
  expect((await server.scheduler.runJob('siem-forward')).status).toBe('ran');
  await server.queue!.runUntilIdle({ advanceTime });
}

/** Audit rows written straight to the table, as a busy tenant would produce them. */
async function bulkAudit(server: TestServer, tenantId: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await writeAudit(server.app.db.kysely, { tenantId, eventType: 'memory.create', category: 'data', action: 'create', status: 'success', statusCode: 201, resourceType: 'memory', resourceId: String(i) });
  }
}

describe('SIEM forwarding of the audit log', () => {
  let server: TestServer;
  const receivers: HttpReceiver[] = [];
  const receiver = async (fallback = 200) => {
    const r = await startReceiver(fallback);
    receivers.push(r);
    return r;
  };
  let operator: Account;

  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true', PLATFORM_ADMIN_EMAILS: ADMIN_EMAIL });
    const res = await server.call('POST', '/auth/signup', { body: { email: ADMIN_EMAIL, password: 'correct horse battery', organization_name: 'Operator' } });
    operator = { token: res.body.tokens.access_token, tenantId: res.body.user.tenant_id, email: ADMIN_EMAIL, userId: res.body.user.id };
  });
  afterAll(async () => {
    await server.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  const createForwarder = (owner: Account, body: Record<string, unknown>) => server.call('POST', '/org/siem/forwarders', { headers: bearer(owner.token), body });

  it("sends every audit row of the tenant, and no other tenant's, to a Splunk HEC receiver", async () => {
    const owner = await signupOwner(server, 'siem-splunk');
    const stranger = await signupOwner(server, 'siem-stranger');
    const r = await receiver();
    const created = await createForwarder(owner, { type: 'splunk_hec', url: `${r.url}/services/collector/event`, token: 'hec-token-1' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ type: 'splunk_hec', enabled: true, has_token: true, cursor: 0 });
    expect(JSON.stringify(created.body)).not.toContain('hec-token-1');
    for (const name of ['One', 'Two']) await server.call('POST', '/org/projects', { headers: bearer(owner.token), body: { name } });
    await server.call('POST', '/org/projects', { headers: bearer(stranger.token), body: { name: 'Not forwarded' } });

    await forward(server);
    expect(r.requests).toHaveLength(1);
    const [req] = r.requests;
    expect(req!.path).toBe('/services/collector/event');
    expect(req!.headers.authorization).toBe('Splunk hec-token-1');
    expect(req!.headers['x-memorysync-batch-id']).toMatch(/^siem_[a-f0-9]{16}_1_\d+$/);
    const lines = req!.body.split('\n').map((l) => JSON.parse(l));
    expect(lines.every((l) => l.sourcetype === 'memorysync:audit' && typeof l.time === 'number' && l.event.tenant_id === owner.tenantId)).toBe(true);
    expect(lines.map((l) => l.event.id)).toEqual(await auditIds(server, owner.tenantId));
    expect(lines.map((l) => l.event.event_type)).toEqual(expect.arrayContaining(['siem_forwarder.created', 'project.created']));

    const after = await server.call('GET', `/org/siem/forwarders/${created.body.id}`, { headers: bearer(owner.token) });
    expect(after.body).toMatchObject({ cursor: Number(lines.at(-1).event.id), forwarded_count: lines.length, batch_in_flight: null, last_error: null });

    // Nothing new → nothing sent; new rows → only they are sent.
    await forward(server);
    expect(r.requests).toHaveLength(1);
    await server.call('POST', '/org/projects', { headers: bearer(owner.token), body: { name: 'Three' } });
    await forward(server);
    expect(r.requests).toHaveLength(2);
    const second = r.requests[1]!.body.split('\n').map((l) => JSON.parse(l).event);
    expect(second.every((e: any) => Number(e.id) > Number(lines.at(-1).event.id))).toBe(true);
  });

  it('cuts a busy log into batches of at most 500 rows, in order, each row once', async () => {
    const owner = await signupOwner(server, 'siem-batches');
    const r = await receiver();
    await createForwarder(owner, { type: 'generic_https', url: r.url, token: 'generic-secret' });
    await bulkAudit(server, owner.tenantId, 1_150);
    await forward(server);
    const batches = r.requests.map((q) => JSON.parse(q.body) as Array<{ id: string; tenant_id: string }>);
    expect(batches.map((b) => b.length)).toEqual([500, 500, (await auditIds(server, owner.tenantId)).length - 1000]);
    expect(batches.flat().map((e) => e.id)).toEqual(await auditIds(server, owner.tenantId));
    expect(new Set(r.requests.map((q) => q.headers['x-memorysync-batch-id'])).size).toBe(3);
    // the generic target's signature, checked as the docs describe it
    for (const q of r.requests) {
      const expected = `sha256=${createHmac('sha256', 'generic-secret').update(`${q.headers['x-memorysync-timestamp']}.${q.body}`).digest('hex')}`;
      expect(q.headers['x-memorysync-signature']).toBe(expected);
    }
  });

  it('dead-letters a batch in the object store after the last retry, lists it to the operator and re-drives it once the receiver recovers', async () => {
    const owner = await signupOwner(server, 'siem-dead');
    const r = await receiver(503);
    const created = await createForwarder(owner, { type: 'datadog', url: `${r.url}/api/v2/logs`, token: 'dd-key-1' });
    await server.call('POST', '/org/projects', { headers: bearer(owner.token), body: { name: 'Lost then found' } });
    const ids = await auditIds(server, owner.tenantId);

    await forward(server, true);
    expect(r.requests).toHaveLength(5);
    expect(r.requests.every((q) => q.headers['dd-api-key'] === 'dd-key-1')).toBe(true);
    const batchId = r.requests[0]!.headers['x-memorysync-batch-id'] as string;
    const key = `siem-dead-letters/${owner.tenantId}/${created.body.id}/${batchId}.json`;
    const stored = JSON.parse(Buffer.from((await server.app.objects.get(key))!).toString('utf8'));
    expect(stored).toMatchObject({ batch_id: batchId, tenant_id: owner.tenantId, forwarder_id: created.body.id, attempts: 5, last_error: 'HTTP 503' });
    expect(stored.events.map((e: any) => e.id)).toEqual(ids);
    // The cursor moved past the dead batch, so later rows are not stuck behind it.
    const state = await server.call('GET', `/org/siem/forwarders/${created.body.id}`, { headers: bearer(owner.token) });
    expect(state.body).toMatchObject({ cursor: Number(ids.at(-1)), dead_letter_count: 1, last_error: 'HTTP 503', batch_in_flight: null });

    const listed = await server.call('GET', `/admin/siem/dead-letters?tenant_id=${owner.tenantId}`, { headers: bearer(operator.token) });
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([expect.objectContaining({ key, batch_id: batchId, forwarder_id: created.body.id, event_count: ids.length })]);

    // Still failing: the dead letter stays.
    const failed = await server.call('POST', '/admin/siem/dead-letters/redrive', { headers: bearer(operator.token), body: { tenant_id: owner.tenantId } });
    expect(failed.body).toMatchObject({ redriven: 0, failed: 1, remaining: 1 });
    expect(await server.app.objects.get(key)).toBeDefined();

    r.fallback = 202;
    const before = r.requests.length;
    const redriven = await server.call('POST', '/admin/siem/dead-letters/redrive', { headers: bearer(operator.token), body: { tenant_id: owner.tenantId } });
    expect(redriven.status).toBe(200);
    expect(redriven.body).toMatchObject({ redriven: 1, failed: 0, remaining: 0 });
    const sent = r.requests.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers['x-memorysync-batch-id']).toBe(batchId);
    const logs = JSON.parse(sent[0]!.body);
    expect(logs.map((l: any) => l.audit.id)).toEqual(ids);
    expect(logs[0]).toMatchObject({ ddsource: 'memorysync', service: 'memorysync' });
    expect(logs[0].message).toEqual(expect.any(String));
    expect(await server.app.objects.get(key)).toBeUndefined();
    expect((await server.call('GET', `/admin/siem/dead-letters?tenant_id=${owner.tenantId}`, { headers: bearer(operator.token) })).body.items).toEqual([]);
    const audit = await server.app.db.kysely.selectFrom('audit_logs').select('event_type').where('request_id', '=', redriven.headers.get('x-request-id')!).execute();
    expect(audit.map((a) => a.event_type)).toEqual(['admin.siem_dead_letters_redriven']);
  });

  it('keeps the dead-letter routes to the platform operator', async () => {
    const owner = await signupOwner(server, 'siem-not-operator');
    expect((await server.call('GET', '/admin/siem/dead-letters')).status).toBe(401);
    expect((await server.call('GET', '/admin/siem/dead-letters', { headers: bearer(owner.token) })).status).toBe(403);
    expect((await server.call('POST', '/admin/siem/dead-letters/redrive', { headers: bearer(owner.token), body: {} })).status).toBe(403);
    expect((await server.call('POST', '/admin/siem/dead-letters/redrive', { headers: bearer(operator.token), body: { limit: 0 } })).status).toBe(422);
  });

  it('stores the token sealed and stops forwarding when disabled or deleted', async () => {
    const owner = await signupOwner(server, 'siem-lifecycle');
    const r = await receiver();
    const created = await createForwarder(owner, { type: 'splunk_hec', url: r.url, token: 'sealed-token-xyz', enabled: false });
    const row = await server.app.db.kysely.selectFrom('siem_forwarders').select('token_ciphertext').where('id', '=', created.body.id).executeTakeFirstOrThrow();
    expect(Buffer.from(row.token_ciphertext).toString('latin1')).not.toContain('sealed-token-xyz');
    await forward(server);
    expect(r.requests).toHaveLength(0);

    const enabled = await server.call('PATCH', `/org/siem/forwarders/${created.body.id}`, { headers: bearer(owner.token), body: { enabled: true, token: 'rotated-token' } });
    expect(enabled.body).toMatchObject({ enabled: true });
    await forward(server);
    expect(r.requests.map((q) => q.headers.authorization)).toEqual(['Splunk rotated-token']);

    const deleted = await server.call('DELETE', `/org/siem/forwarders/${created.body.id}`, { headers: bearer(owner.token) });
    expect(deleted.body).toEqual({ id: created.body.id, deleted: true });
    await server.call('POST', '/org/projects', { headers: bearer(owner.token), body: { name: 'After delete' } });
    await forward(server);
    expect(r.requests).toHaveLength(1);
  });

  describe('forwarder routes: auth, role, tenancy and input', () => {
    let owner: Account;
    let forwarderId: string;
    let r: HttpReceiver;
    beforeAll(async () => {
      owner = await signupOwner(server, 'siem-rbac');
      r = await receiver();
      forwarderId = (await createForwarder(owner, { type: 'generic_https', url: r.url, token: 't', enabled: false })).body.id;
    });
    const routes = () => [
      ['POST', '/org/siem/forwarders', { type: 'generic_https', url: r.url, token: 't' }],
      ['GET', '/org/siem/forwarders', undefined],
      ['GET', `/org/siem/forwarders/${forwarderId}`, undefined],
      ['PATCH', `/org/siem/forwarders/${forwarderId}`, { name: 'renamed' }],
      ['DELETE', `/org/siem/forwarders/${forwarderId}`, undefined],
    ] as const;

    it('answers 401 without credentials and 403 to API keys and members', async () => {
      const { apiKey } = await server.newTenant();
      const member = await addMember(server, owner.tenantId, 'member');
      const before = await countRows(server, 'siem_forwarders');
      for (const [method, path, body] of routes()) {
        expect((await server.call(method, path, { body })).status, `${method} ${path}`).toBe(401);
        expect((await server.call(method, path, { body, headers: { 'X-API-Key': apiKey } })).status, `${method} ${path}`).toBe(403);
        expect((await server.call(method, path, { body, headers: bearer(member.token) })).status, `${method} ${path}`).toBe(403);
      }
      expect(await countRows(server, 'siem_forwarders')).toBe(before);
    });

    it("hides another tenant's forwarder (404, empty list)", async () => {
      const other = await signupOwner(server, 'siem-rbac-other');
      expect((await server.call('GET', '/org/siem/forwarders', { headers: bearer(other.token) })).body).toEqual({ items: [], total: 0 });
      for (const [method, path, body] of routes().slice(2)) {
        expect((await server.call(method, path, { body, headers: bearer(other.token) })).status, `${method} ${path}`).toBe(404);
      }
      expect((await server.call('GET', `/org/siem/forwarders/${forwarderId}`, { headers: bearer(owner.token) })).body.name).toBe('generic_https');
    });

    it.each([
      [{ type: 'syslog', url: 'https://siem.example', token: 't' }, 'type'],
      [{ type: 'splunk_hec', url: 'ftp://siem.example', token: 't' }, 'url'],
      [{ type: 'splunk_hec', url: 'https://siem.example' }, 'token'],
      [{ type: 'splunk_hec', url: 'https://siem.example', token: 'a\r\nb' }, 'token'],
    ])('rejects %j with 422 and writes nothing', async (body, field) => {
      const before = await countRows(server, 'siem_forwarders');
      const res = await createForwarder(owner, body);
      expect(res.status).toBe(422);
      expect(JSON.stringify(res.body.error)).toContain(field);
      expect(await countRows(server, 'siem_forwarders')).toBe(before);
    });
  });
});

describe('SIEM targets and the SSRF guard (private targets NOT allowed)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'false' });
  });
  afterAll(() => server.stop());

  it('refuses a forwarder URL on loopback or the metadata address with 422', async () => {
    const owner = await signupOwner(server, 'siem-ssrf');
    for (const url of ['http://127.0.0.1:8088/services/collector', 'http://169.254.169.254/', 'https://[::1]/']) {
      const res = await server.call('POST', '/org/siem/forwarders', { headers: bearer(owner.token), body: { type: 'splunk_hec', url, token: 't' } });
      expect(res.status, url).toBe(422);
    }
    expect(await countRows(server, 'siem_forwarders')).toBe(0);
  });
});
