import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/**
 * Tenancy attacks over real HTTP. Tenant A owns the victim's memories (end user u1); tenant B and
 * A's own end user u2 attack them. After every attack A's rows and A's own view are unchanged.
 */
describe('tenancy over HTTP', () => {
  let server: TestServer;
  const A = { tenantId: '', jwt: '', key: '', lockedKey: '', defaultProject: '', secondProject: '', keyId: 0 };
  const B = { tenantId: '', jwt: '', key: '', defaultProject: '' };
  /** A/u1's memory ids by label */
  const ids: Record<string, number> = {};
  const victimTexts = {
    orgWide: 'Alpha vault code is 4417 for the north office door.',
    orgWide2: 'Alpha prefers the quiet meeting room on Fridays.',
    defaultProject: 'Alpha default project roadmap lists the Falcon launch.',
    secondProject: 'Alpha second project budget is twelve thousand euros.',
    turn: 'my passport number ends with 9931 and expires soon',
  };
  const u2Text = 'User two of tenant Alpha drinks green tea daily.';
  const bText = 'Tenant Bravo user one keeps bees on the rooftop.';
  let baseline: Awaited<ReturnType<typeof victimState>>;
  let u1Internal: number;

  const bearer = (jwt: string, extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${jwt}`, ...extra });
  const asA = (endUser = 'u1', extra: Record<string, string> = {}) => keyHeaders(A.key, endUser, extra);
  const asB = (endUser = 'u1', extra: Record<string, string> = {}) => keyHeaders(B.key, endUser, extra);

  async function signup(label: string) {
    const res = await server.call('POST', '/auth/signup', { body: { email: `${label}-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`, password: 'correct horse battery', organization_name: label } });
    expect(res.status).toBe(201);
    return { jwt: res.body.tokens.access_token as string, tenantId: res.body.user.tenant_id as string };
  }

  async function createKey(jwt: string, body: Record<string, unknown>) {
    const res = await server.call('POST', '/org/api-keys', { headers: bearer(jwt), body });
    expect(res.status).toBe(201);
    return res.body as { id: number; key: string };
  }

  async function add(headers: Record<string, string>, text: string, extra: Record<string, unknown> = {}) {
    const res = await server.call('POST', '/memory/add', { headers, body: { text, ...extra } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as number;
  }

  /** Every stored column of A/u1's memories, plus what A sees through the API. */
  async function victimState() {
    const rows = await server.app.db.kysely.selectFrom('memories').selectAll().where('tenant_id', '=', A.tenantId).where('user_id', '=', u1Internal).orderBy('id').execute();
    const exported = await server.call('GET', '/memory/export', { headers: asA() });
    expect(exported.status).toBe(200);
    const texts = exported.body.memories.map((m: any) => [m.id, m.text, m.tags, m.updated_at]);
    const list = await server.call('GET', `/v1/memory/${A.tenantId}/u1/list?limit=0`, { headers: { 'X-API-Key': A.key } });
    expect(list.status).toBe(200);
    return { rows, texts, total: list.body.total };
  }

  async function expectVictimUnchanged() {
    expect(await victimState()).toEqual(baseline);
  }

  const allVictimTexts = () => Object.values(victimTexts);
  /** A response body never carries any of the victim's texts. */
  const expectNoVictimText = (body: unknown) => {
    const json = JSON.stringify(body);
    for (const t of allVictimTexts()) expect(json).not.toContain(t);
    expect(json).not.toContain('4417');
    expect(json).not.toContain('9931');
  };

  beforeAll(async () => {
    server = await startTestServer();
    Object.assign(A, await signup('Alpha'));
    Object.assign(B, await signup('Bravo'));
    const projectsA = await server.call('GET', '/org/projects', { headers: bearer(A.jwt) });
    A.defaultProject = projectsA.body[0].id;
    const second = await server.call('POST', '/org/projects', { headers: bearer(A.jwt), body: { name: 'Second' } });
    expect(second.status).toBe(201);
    A.secondProject = second.body.id;
    const keyA = await createKey(A.jwt, { name: 'alpha' });
    A.key = keyA.key;
    A.keyId = keyA.id;
    A.lockedKey = (await createKey(A.jwt, { name: 'alpha-locked', project_id: A.secondProject })).key;
    B.key = (await createKey(B.jwt, { name: 'bravo' })).key;
    B.defaultProject = (await server.call('GET', '/org/projects', { headers: bearer(B.jwt) })).body[0].id;

    ids.orgWide = await add(asA(), victimTexts.orgWide, { tags: ['secret'] });
    ids.orgWide2 = await add(asA(), victimTexts.orgWide2);
    ids.defaultProject = await add(asA('u1', { 'X-Project-ID': A.defaultProject }), victimTexts.defaultProject);
    ids.secondProject = await add(keyHeaders(A.lockedKey, 'u1'), victimTexts.secondProject);
    const turn = await server.call('POST', '/v1/memory/add_turn', { headers: { 'X-API-Key': A.key }, body: { tenant_id: A.tenantId, user_id: 'u1', text: `human: ${victimTexts.turn}` } });
    expect(turn.status).toBe(201);
    ids.turn = Number(turn.body.memory_id.slice(2));
    await add(asA('u2'), u2Text);
    await add(asB(), bText);
    u1Internal = await server.app.identity.resolveEndUser(A.tenantId, 'u1');
    baseline = await victimState();
    expect(baseline.rows).toHaveLength(5);
    expect(baseline.total).toBe(5);
  });
  afterAll(() => server.stop());

  const victimIds = () => Object.values(ids);

  describe("another tenant's key", () => {
    it('cannot read, change or delete A memories by id (404, never the text)', async () => {
      for (const id of victimIds()) {
        const get = await server.call('GET', `/memory/${id}`, { headers: asB() });
        expect(get.status).toBe(404);
        expect(get.body.error.code).toBe('NOT_FOUND');
        expectNoVictimText(get.body);
        const patch = await server.call('PATCH', `/memory/${id}`, { headers: asB(), body: { text: 'Overwritten by the tenant B attacker.', tags: ['pwned'], importance: 0 } });
        expect(patch.status).toBe(404);
        expectNoVictimText(patch.body);
        const del = await server.call('DELETE', `/memory/${id}`, { headers: asB() });
        expect(del.status).toBe(404);
      }
      await expectVictimUnchanged();
    });

    it('forgets none of A memories when it sends their ids in every accepted form', async () => {
      const forged = victimIds().flatMap((id) => [id, `m_${id}`, String(id)]);
      const res = await server.call('DELETE', '/memory/forget', { headers: asB(), body: { memory_ids: forged } });
      expect(res.status).toBe(200);
      expect(res.body.deleted_count).toBe(0);
      expect(res.body.deleted_ids).toEqual([]);
      expect([...res.body.skipped_ids].sort()).toEqual([...victimIds()].sort());
      await expectVictimUnchanged();
    });

    it('finds only its own memories through query, retrieve and export, even naming A in the body', async () => {
      const overrides = { tenant_id: A.tenantId, user_id: 'u1', project_id: A.defaultProject, environment: 'production' };
      for (const path of ['/memory/query', '/memory/retrieve']) {
        for (const query of ['vault code north office door', 'passport number', 'roadmap Falcon launch', 'budget euros']) {
          const res = await server.call('POST', path, { headers: asB(), body: { query, k: 20, ...overrides } });
          expect(res.status).toBe(200);
          expectNoVictimText(res.body);
          for (const m of res.body.memories) expect(m.text).toBe(bText);
        }
      }
      const exported = await server.call('GET', '/memory/export', { headers: asB() });
      expect(exported.body.memories.map((m: any) => m.text)).toEqual([bText]);
      await expectVictimUnchanged();
    });

    it('stores writes in its own tenant whatever tenant, user, project and environment the body names', async () => {
      const overrides = { tenant_id: A.tenantId, user_id: 'u1', project_id: A.defaultProject, environment: 'development' };
      const res = await server.call('POST', '/memory/add', { headers: asB(), body: { text: 'Tenant B tries to write into tenant A.', ...overrides } });
      expect(res.status).toBe(201);
      const row = await server.app.db.kysely.selectFrom('memories').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ tenant_id: B.tenantId, project_id: null, environment: 'production', user_id: await server.app.identity.resolveEndUser(B.tenantId, 'u1') });
      expect(row.user_id).not.toBe(u1Internal);

      const bulk = await server.call('POST', '/memory/bulk-add', { headers: asB(), body: { items: [{ text: 'Tenant B bulk item aimed at tenant A.', ...overrides }] } });
      expect(bulk.status).toBe(207);
      const bulkRow = await server.app.db.kysely.selectFrom('memories').selectAll().where('id', '=', bulk.body.results[0].memory_ids[0]).executeTakeFirstOrThrow();
      expect(bulkRow).toMatchObject({ tenant_id: B.tenantId, project_id: null, user_id: row.user_id });
      await expectVictimUnchanged();
    });

    it('keeps the same end-user id in two tenants as two users', async () => {
      const bU1 = await server.app.identity.resolveEndUser(B.tenantId, 'u1');
      expect(bU1).not.toBe(u1Internal);
      const users = await server.app.db.kysely.selectFrom('users').select(['id', 'tenant_id', 'external_id']).where('id', 'in', [bU1, u1Internal]).orderBy('id').execute();
      expect(users.map((u) => u.external_id).sort()).toEqual([`${A.tenantId}:u1`, `${B.tenantId}:u1`].sort());
      // A's exact text in B is a new memory, not a duplicate that would reveal A's id
      const same = await server.call('POST', '/memory/add', { headers: asB(), body: { text: victimTexts.orgWide2 } });
      expect(same.status).toBe(201);
      expect(same.body.id).not.toBe(ids.orgWide2);
      const again = await server.call('POST', '/memory/add', { headers: asB(), body: { text: victimTexts.orgWide2 } });
      expect(again.body).toEqual({ status: 'skipped', reason: 'duplicate', existing_id: same.body.id });
      await server.call('DELETE', `/memory/${same.body.id}`, { headers: asB() });
      await expectVictimUnchanged();
    });

    it('gets 403 on the v1 plane when body or path names tenant A', async () => {
      const headers = { 'X-API-Key': B.key };
      const calls: Array<[string, string, unknown?]> = [
        ['POST', '/v1/memory/add_turn', { tenant_id: A.tenantId, user_id: 'u1', text: 'Tenant B writes a turn into tenant A.' }],
        ['POST', '/v1/memory/query', { tenant_id: A.tenantId, user_id: 'u1', prompt: 'passport number' }],
        ['POST', '/v1/memory/recall', { tenant_id: A.tenantId, user_id: 'u1', prompt: 'passport number' }],
        ['GET', `/v1/memory/${A.tenantId}/u1/list?limit=0`],
        ['GET', `/v1/memory/${encodeURIComponent(A.tenantId)}/u1/list`],
        ['POST', '/v1/memory/query', { tenant_id: 'org_0000000000000000', user_id: 'u1', prompt: 'anything at all' }],
      ];
      for (const [method, path, body] of calls) {
        const res = await server.call(method, path, { headers, body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe('TENANT_MISMATCH');
        expectNoVictimText(res.body);
      }
      await expectVictimUnchanged();
    });

    it("sees only its own data on the v1 plane under 'default' or its own tenant id", async () => {
      const headers = { 'X-API-Key': B.key };
      const q = await server.call('POST', '/v1/memory/query', { headers, body: { tenant_id: 'default', user_id: 'u1', prompt: 'passport number vault code', k: 50 } });
      expect(q.status).toBe(200);
      expectNoVictimText(q.body);
      const r = await server.call('POST', '/v1/memory/recall', { headers, body: { tenant_id: B.tenantId, user_id: 'u1', prompt: 'passport number vault code', k: 50 } });
      expect(r.status).toBe(200);
      expectNoVictimText(r.body);
      const list = await server.call('GET', '/v1/memory/default/u1/list?limit=0', { headers });
      expect(list.status).toBe(200);
      expectNoVictimText(list.body);
      expect(list.body.memories.map((m: any) => m.raw_text)).toContain(bText);
      await expectVictimUnchanged();
    });

    it("gets 404 for A's project in X-Project-ID and 403 for A's id in X-Tenant-ID", async () => {
      for (const project of [A.defaultProject, A.secondProject]) {
        const add = await server.call('POST', '/memory/add', { headers: asB('u1', { 'X-Project-ID': project }), body: { text: 'Tenant B writes into a project of tenant A.' } });
        expect(add.status).toBe(404);
        expect(add.body.error.code).toBe('PROJECT_NOT_FOUND');
        const q = await server.call('POST', '/memory/query', { headers: asB('u1', { 'X-Project-ID': project }), body: { query: 'roadmap budget' } });
        expect(q.status).toBe(404);
        const get = await server.call('GET', `/memory/${ids.defaultProject}`, { headers: asB('u1', { 'X-Project-ID': project }) });
        expect(get.status).toBe(404);
        expectNoVictimText(get.body);
      }
      const tenantHeader = await server.call('POST', '/memory/query', { headers: asB('u1', { 'X-Tenant-ID': A.tenantId }), body: { query: 'vault' } });
      expect(tenantHeader.status).toBe(403);
      expect(tenantHeader.body.error.code).toBe('TENANT_MISMATCH');
      await expectVictimUnchanged();
    });

    it("never lists, reads, changes or deletes A's projects and keys", async () => {
      for (const headers of [{ 'X-API-Key': B.key }, bearer(B.jwt)]) {
        const list = await server.call('GET', '/org/projects', { headers });
        expect(list.status).toBe(200);
        expect(list.body.map((p: any) => p.tenant_id)).toEqual(list.body.map(() => B.tenantId));
        expect(list.body.map((p: any) => p.id)).not.toContain(A.defaultProject);
        expect(list.body.map((p: any) => p.id)).not.toContain(A.secondProject);
        expect((await server.call('GET', `/org/projects/${A.secondProject}`, { headers })).status).toBe(404);
      }
      expect((await server.call('PATCH', `/org/projects/${A.secondProject}`, { headers: bearer(B.jwt), body: { name: 'Taken over' } })).status).toBe(404);
      expect((await server.call('DELETE', `/org/projects/${A.secondProject}`, { headers: bearer(B.jwt) })).status).toBe(404);
      expect((await server.call('DELETE', `/org/api-keys/${A.keyId}`, { headers: bearer(B.jwt) })).status).toBe(404);
      const keys = await server.call('GET', '/org/api-keys', { headers: bearer(B.jwt) });
      expect(keys.body.map((k: any) => k.id)).not.toContain(A.keyId);
      const aProjects = await server.call('GET', '/org/projects', { headers: bearer(A.jwt) });
      expect(aProjects.body.find((p: any) => p.id === A.secondProject)).toMatchObject({ name: 'Second', tenant_id: A.tenantId });
      expect((await server.call('GET', '/memory/export', { headers: asA() })).status).toBe(200);
      await expectVictimUnchanged();
    });

    it("cannot reach A's memories with its signed-in session either", async () => {
      const headers = bearer(B.jwt, { 'X-End-User-ID': 'u1' });
      expect((await server.call('GET', `/memory/${ids.orgWide}`, { headers })).status).toBe(404);
      const q = await server.call('POST', '/memory/query', { headers, body: { query: 'vault code north office', k: 20, tenant_id: A.tenantId, user_id: 'u1' } });
      expect(q.status).toBe(200);
      expectNoVictimText(q.body);
      const forget = await server.call('DELETE', '/memory/forget', { headers, body: { memory_ids: victimIds() } });
      expect(forget.body.deleted_count).toBe(0);
      await expectVictimUnchanged();
    });
  });

  describe('another end user of the same tenant', () => {
    it("cannot read, change or delete u1's memories by id", async () => {
      for (const id of victimIds()) {
        const get = await server.call('GET', `/memory/${id}`, { headers: asA('u2') });
        expect(get.status).toBe(404);
        expectNoVictimText(get.body);
        expect((await server.call('PATCH', `/memory/${id}`, { headers: asA('u2'), body: { tags: ['pwned'] } })).status).toBe(404);
        expect((await server.call('DELETE', `/memory/${id}`, { headers: asA('u2') })).status).toBe(404);
      }
      const forget = await server.call('DELETE', '/memory/forget', { headers: asA('u2'), body: { memory_ids: victimIds().map((id) => `m_${id}`) } });
      expect(forget.body).toMatchObject({ deleted_count: 0, deleted_ids: [] });
      await expectVictimUnchanged();
    });

    it("finds only u2's memories through query, retrieve and export, even naming u1 in the body", async () => {
      for (const path of ['/memory/query', '/memory/retrieve']) {
        const res = await server.call('POST', path, { headers: asA('u2'), body: { query: 'vault code passport budget roadmap', k: 20, user_id: 'u1', end_user_id: 'u1' } });
        expect(res.status).toBe(200);
        expectNoVictimText(res.body);
        for (const m of res.body.memories) expect(m.user_id).toBe('u2');
      }
      const exported = await server.call('GET', '/memory/export?end_user_id=u1', { headers: asA('u2') });
      expect(exported.body.user_id).toBe('u2');
      expectNoVictimText(exported.body);
      await expectVictimUnchanged();
    });

    it('writes as u2 whatever user, tenant, project and environment the body names', async () => {
      const u2Internal = await server.app.identity.resolveEndUser(A.tenantId, 'u2');
      const body = { text: 'User two pretends to be user one here.', user_id: 'u1', end_user_id: 'u1', tenant_id: B.tenantId, project_id: A.secondProject, environment: 'staging' };
      const res = await server.call('POST', '/memory/add', { headers: asA('u2'), body });
      expect(res.status).toBe(201);
      expect(res.body.user_id).toBe('u2');
      const row = await server.app.db.kysely.selectFrom('memories').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ tenant_id: A.tenantId, user_id: u2Internal, project_id: null, environment: 'production' });

      const bulk = await server.call('POST', '/memory/bulk-add', { headers: asA('u2'), body: { end_user_id: 'u1', items: [{ text: 'User two bulk item naming user one.', end_user_id: 'u1', user_id: 'u1' }] } });
      expect(bulk.status).toBe(207);
      const bulkRow = await server.app.db.kysely.selectFrom('memories').selectAll().where('id', '=', bulk.body.results[0].memory_ids[0]).executeTakeFirstOrThrow();
      expect(bulkRow).toMatchObject({ tenant_id: A.tenantId, user_id: u2Internal });
      await expectVictimUnchanged();
    });
  });

  describe('a project-locked key', () => {
    const locked = (extra: Record<string, string> = {}) => keyHeaders(A.lockedKey, 'u1', extra);

    it('reads only memories of its own project', async () => {
      expect((await server.call('GET', `/memory/${ids.secondProject}`, { headers: locked() })).body.text).toBe(victimTexts.secondProject);
      for (const id of [ids.orgWide, ids.defaultProject, ids.turn]) {
        const res = await server.call('GET', `/memory/${id}`, { headers: locked() });
        expect(res.status).toBe(404);
      }
      const q = await server.call('POST', '/memory/query', { headers: locked(), body: { query: 'roadmap Falcon launch vault passport budget', k: 20 } });
      expect(q.body.memories.map((m: any) => m.text)).toEqual([victimTexts.secondProject]);
      const exported = await server.call('GET', '/memory/export', { headers: locked() });
      expect(exported.body.memories.map((m: any) => m.id)).toEqual([ids.secondProject]);
      const list = await server.call('GET', '/v1/memory/default/u1/list?limit=0', { headers: { 'X-API-Key': A.lockedKey } });
      expect(list.body.memories.map((m: any) => m.memory_id)).toEqual([`m_${ids.secondProject}`]);
      const recall = await server.call('POST', '/v1/memory/recall', { headers: { 'X-API-Key': A.lockedKey }, body: { tenant_id: 'default', user_id: 'u1', prompt: 'passport number', k: 20 } });
      expect(recall.body.context).not.toContain('9931');
      // the legitimate reads above touched last_accessed_at of A's own memory; attacks below must change nothing more
      baseline = await victimState();
    });

    it('cannot change or delete memories of another project', async () => {
      for (const id of [ids.orgWide, ids.defaultProject]) {
        expect((await server.call('PATCH', `/memory/${id}`, { headers: locked(), body: { tags: ['pwned'] } })).status).toBe(404);
        expect((await server.call('DELETE', `/memory/${id}`, { headers: locked() })).status).toBe(404);
      }
      const forget = await server.call('DELETE', '/memory/forget', { headers: locked(), body: { memory_ids: [ids.orgWide, ids.defaultProject, ids.turn] } });
      expect(forget.body).toMatchObject({ deleted_count: 0 });
      await expectVictimUnchanged();
    });

    it('gets 403 when it names another project and writes into its own whatever the body says', async () => {
      const res = await server.call('POST', '/memory/query', { headers: locked({ 'X-Project-ID': A.defaultProject }), body: { query: 'roadmap' } });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('PROJECT_FORBIDDEN');
      const add = await server.call('POST', '/memory/add', { headers: keyHeaders(A.lockedKey, 'u3'), body: { text: 'Locked key names the default project.', project_id: A.defaultProject } });
      expect(add.status).toBe(201);
      expect(add.body.project_id).toBe(A.secondProject);
      const row = await server.app.db.kysely.selectFrom('memories').select(['project_id', 'tenant_id']).where('id', '=', add.body.id).executeTakeFirstOrThrow();
      expect(row).toEqual({ project_id: A.secondProject, tenant_id: A.tenantId });
      await expectVictimUnchanged();
    });
  });

  it('still gives A its own memories after every attack', async () => {
    const q = await server.call('POST', '/memory/query', { headers: asA(), body: { query: 'vault code for the north office', k: 1 } });
    expect(q.body.memories[0]).toMatchObject({ id: ids.orgWide, text: victimTexts.orgWide, tags: ['secret'] });
    const list = await server.call('GET', '/v1/memory/default/u1/list?limit=0', { headers: { 'X-API-Key': A.key } });
    expect(list.body.total).toBe(5);
  });
});
