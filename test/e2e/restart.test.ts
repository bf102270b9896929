import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

/** Starts the server on a data dir with the first-start bootstrap on, capturing what it prints. */
async function startOn(dataDir: string): Promise<{ server: TestServer; printed: string }> {
  let printed = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed += String(chunk);
    return true;
  });
  try {
    const server = await startTestServer({ MEMORYSYNC_DATA_DIR: dataDir, DEV_BOOTSTRAP: 'true' });
    return { server, printed };
  } finally {
    write.mockRestore();
  }
}

const mode = (path: string) => statSync(path).mode & 0o777;
const TEXT = 'The spare house key is under the blue flower pot.';
const EMAIL = 'restart@example.com';
const PASSWORD = 'correct horse battery';

describe('restart on the same data dir', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'memorysync-restart-'));
  const devJson = join(dataDir, 'dev.json');
  let server: TestServer | undefined;
  let saved: { apiKey: string; tenantId: string; projectId: string };
  let memoryId: number;
  let accessToken: string;
  let tenantsBefore: unknown;
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('first start on an empty data dir', () => {
    let printed: string;
    beforeAll(async () => {
      ({ server, printed } = await startOn(dataDir));
    });

    it('writes dev.json (mode 0600) with the credentials it prints once', () => {
      expect(existsSync(devJson)).toBe(true);
      expect(mode(devJson)).toBe(0o600);
      saved = JSON.parse(readFileSync(devJson, 'utf8'));
      expect(Object.keys(saved).sort()).toEqual(['apiKey', 'projectId', 'tenantId']);
      expect(saved.apiKey).toMatch(/^ms_/);
      expect(saved.tenantId).toMatch(/^org_/);
      expect(saved.projectId).toMatch(/^proj_/);
      expect(server!.devCredentials).toEqual(saved);
      expect(printed).toContain(saved.apiKey);
      for (const secret of ['master.key', 'jwt-secret']) expect(mode(join(dataDir, secret))).toBe(0o600);
    });

    it('serves the development key, its tenant and default project', async () => {
      const projects = await server!.call('GET', '/org/projects', { headers: { 'X-API-Key': saved.apiKey } });
      expect(projects.body[0]).toMatchObject({ id: saved.projectId, tenant_id: saved.tenantId, is_default: true });
      const add = await server!.call('POST', '/memory/add', { headers: keyHeaders(saved.apiKey, 'restart-user'), body: { text: TEXT, tags: ['home'] } });
      expect(add.status).toBe(201);
      memoryId = add.body.id;
      const signup = await server!.call('POST', '/auth/signup', { body: { email: EMAIL, password: PASSWORD } });
      expect(signup.status).toBe(201);
      accessToken = signup.body.tokens.access_token;
      tenantsBefore = await server!.app.db.kysely.selectFrom('tenants').select('id').orderBy('id').execute();
    });
  });

  describe('second start on the same data dir', () => {
    let printed: string;
    beforeAll(async () => {
      await server!.stop();
      server = undefined;
      ({ server, printed } = await startOn(dataDir));
    });

    it('reuses dev.json and creates no new tenant', async () => {
      expect(JSON.parse(readFileSync(devJson, 'utf8'))).toEqual(saved);
      expect(mode(devJson)).toBe(0o600);
      expect(server!.devCredentials).toEqual(saved);
      expect(printed).not.toContain(saved.apiKey);
      expect(await server!.app.db.kysely.selectFrom('tenants').select('id').orderBy('id').execute()).toEqual(tenantsBefore);
    });

    it('still has the memory and finds it by query', async () => {
      const get = await server!.call('GET', `/memory/${memoryId}`, { headers: keyHeaders(saved.apiKey, 'restart-user') });
      expect(get.status).toBe(200);
      expect(get.body).toMatchObject({ text: TEXT, tags: ['home'] });
      const q = await server!.call('POST', '/memory/query', { headers: keyHeaders(saved.apiKey, 'restart-user'), body: { query: 'where did I hide the house key?', k: 3 } });
      expect(q.status).toBe(200);
      expect(q.body.memories[0]).toMatchObject({ id: memoryId, text: TEXT });
      expect(q.body.degraded).toBe(false);
    });

    it('keeps accounts and the token signing secret', async () => {
      const me = await server!.call('GET', '/auth/me', { headers: { Authorization: `Bearer ${accessToken}` } });
      expect(me.status).toBe(200);
      expect(me.body.email).toBe(EMAIL);
      expect((await server!.call('POST', '/auth/login', { body: { email: EMAIL, password: PASSWORD } })).status).toBe(200);
    });
  });
});
