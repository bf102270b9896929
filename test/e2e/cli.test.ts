import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '#shared/config.ts';
import { namespaceForUser } from '#shared/ports/vector-store.ts';
import { startLocalServer, type LocalServer } from '#local/runtime.ts';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/memorysync.js');

/** Runs the CLI as a user would, against one data dir; never throws, returns the exit code and output. */
async function cli(dataDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), MEMORYSYNC_DATA_DIR: dataDir };
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, cwd: resolve(import.meta.dirname, '../..'), timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function cliJson(dataDir: string, args: string[]) {
  const res = await cli(dataDir, [...args, '--json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

/** The local server on the same data dir (the CLI is not running meanwhile: PGlite has one owner). */
async function withServer<T>(dataDir: string, work: (server: LocalServer) => Promise<T>): Promise<T> {
  const server = await startLocalServer(loadConfig({ MEMORYSYNC_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false' }), {}, { startBackground: false });
  try {
    return await work(server);
  } finally {
    await server.stop();
  }
}

const post = async (server: LocalServer, path: string, headers: Record<string, string>, body: unknown) => {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
};

// Each CLI run boots the app (PGlite, migrations, embedder) in a fresh process: seconds, not milliseconds.
const SLOW = 300_000;

describe('memorysync CLI (bin/memorysync.js as a child process)', () => {
  const root = mkdtempSync(join(tmpdir(), 'memorysync-cli-'));
  const dataDir = join(root, 'data');
  const restoredDir = join(root, 'restored');
  const backupFile = join(root, 'backup.msbk');
  let tenantId: string;
  let apiKey: string;

  beforeAll(async () => {
    const created = await cliJson(dataDir, ['create-tenant', 'Acme Widgets', '--owner-email', 'boss@acme.test']);
    tenantId = created.tenant_id;
  }, SLOW);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('creates a tenant with its default project and a one-time owner invitation', async () => {
    expect(tenantId).toMatch(/^org_[a-f0-9]{16}$/);
    const human = await cli(dataDir, ['create-tenant', 'Second Org']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Created tenant org_[a-f0-9]{16} \(Second Org\)\n  default project: proj_[a-f0-9]{16}/);
  }, SLOW);

  it('creates a scoped API key that the server then accepts, and rejects unknown tenants and scopes', async () => {
    const key = await cliJson(dataDir, ['create-key', '--tenant', tenantId, '--name', 'ingest', '--scopes', 'memories:read,memories:write,projects:read']);
    expect(key).toMatchObject({ name: 'ingest', scopes: ['memories:read', 'memories:write', 'projects:read'] });
    expect(key.key).toMatch(/^ms_live_/);
    apiKey = key.key;

    const unknownTenant = await cli(dataDir, ['create-key', '--tenant', 'org_nope', '--json']);
    expect(unknownTenant.code).toBe(1);
    expect(JSON.parse(unknownTenant.stderr)).toEqual({ error: 'tenant org_nope not found' });
    const badScope = await cli(dataDir, ['create-key', '--tenant', tenantId, '--scopes', 'root']);
    expect(badScope.code).toBe(1);
    expect(badScope.stderr).toMatch(/unknown scope\(s\): root/);
    const missing = await cli(dataDir, ['create-key']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--tenant/);

    await withServer(dataDir, async (server) => {
      const headers = { 'X-API-Key': apiKey, 'X-End-User-ID': 'alice' };
      expect((await post(server, '/memory/add', headers, { text: 'Alice keeps her passport in the top drawer.' })).status).toBe(201);
      expect((await post(server, '/memory/add', headers, { text: 'Alice is allergic to peanuts and shellfish.' })).status).toBe(201);
      expect((await post(server, '/memory/add', { ...headers, 'X-End-User-ID': 'bob' }, { text: 'Bob parks his bicycle behind the library.' })).status).toBe(201);
      const audit = await server.app.db.kysely.selectFrom('audit_logs').select(['event_type', 'principal']).where('tenant_id', '=', tenantId).where('category', '=', 'admin').execute();
      expect(audit).toContainEqual({ event_type: 'admin.tenant_created', principal: 'cli' });
    });
  }, SLOW);

  it("exports one end user's decrypted memories, to stdout or to a 0600 file", async () => {
    const doc = await cliJson(dataDir, ['export-user', '--tenant', tenantId, '--user', 'alice']);
    expect(doc).toMatchObject({ tenant_id: tenantId, end_user_id: 'alice', count: 2 });
    expect(doc.memories.map((m: any) => m.text).sort()).toEqual(['Alice is allergic to peanuts and shellfish.', 'Alice keeps her passport in the top drawer.']);
    const file = join(root, 'alice.json');
    const human = await cli(dataDir, ['export-user', '--tenant', tenantId, '--user', 'alice', '--out', file]);
    expect(human.stdout.trim()).toBe(`Exported 2 memories of alice (tenant ${tenantId}) to ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8')).count).toBe(2);
    const nobody = await cli(dataDir, ['export-user', '--tenant', tenantId, '--user', 'nobody']);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/end user nobody not found/);
  }, SLOW);

  it('reindex rebuilds an emptied vector index from the encrypted text', async () => {
    const users = await withServer(dataDir, async (server) => {
      const rows = await server.app.db.kysely.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('kind', '=', 'end_user').execute();
      for (const u of rows) await server.app.vectors.deleteNamespace(namespaceForUser(u.id));
      return rows.map((u) => u.id);
    });
    const result = await cliJson(dataDir, ['reindex', '--tenant', tenantId]);
    expect(result).toMatchObject({ reindexed: 3, total: 3, resumed: false });
    const onlyAlice = await cliJson(dataDir, ['reindex', '--tenant', tenantId, '--user', 'alice']);
    expect(onlyAlice).toMatchObject({ reindexed: 2, total: 2 });
    await withServer(dataDir, async (server) => {
      const counts = await Promise.all(users.map((id) => server.app.vectors.count(namespaceForUser(id))));
      expect(counts.sort()).toEqual([1, 2]);
    });
    expect((await cli(dataDir, ['reindex', '--user', 'alice'])).code).toBe(1);
  }, SLOW);

  it('backs up every table encrypted (no plaintext in the file) and restores it into an empty data dir', async () => {
    const backup = await cliJson(dataDir, ['backup', '--out', backupFile]);
    expect(backup.tables).toMatchObject({ tenants: 2, memories: 3, api_keys: 1, invitations: 1 });
    const bytes = readFileSync(backupFile);
    expect(bytes.subarray(0, 6).toString()).toBe('MSBK1 ');
    expect(bytes.includes(Buffer.from('Acme Widgets'))).toBe(false);
    expect(bytes.includes(Buffer.from(tenantId))).toBe(false);
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);

    // Same key ring (the master key file), fresh database.
    mkdirSync(restoredDir, { recursive: true, mode: 0o700 });
    copyFileSync(join(dataDir, 'master.key'), join(restoredDir, 'master.key'));
    const restored = await cliJson(restoredDir, ['restore', backupFile]);
    expect(restored.tables).toEqual(expect.objectContaining({ tenants: 2, memories: 3, api_keys: 1 }));
    expect(restored.reindexed).toBe(3);
    const doc = await cliJson(restoredDir, ['export-user', '--tenant', tenantId, '--user', 'alice']);
    expect(doc.memories.map((m: any) => m.text).sort()).toEqual(['Alice is allergic to peanuts and shellfish.', 'Alice keeps her passport in the top drawer.']);
    await withServer(restoredDir, async (server) => {
      // restored keys work, and new rows get fresh ids after the restored ones
      const add = await post(server, '/memory/add', { 'X-API-Key': apiKey, 'X-End-User-ID': 'bob' }, { text: 'Bob moved his bicycle to the garage.' });
      expect(add.status).toBe(201);
      const q = await post(server, '/memory/query', { 'X-API-Key': apiKey, 'X-End-User-ID': 'alice' }, { query: 'where is the passport', k: 1 });
      expect(q.body.memories[0].text).toContain('passport');
    });
  }, SLOW);

  it('refuses to restore over data, a tampered backup, or a backup under another key ring', async () => {
    const overData = await cli(dataDir, ['restore', backupFile, '--json']);
    expect(overData.code).toBe(1);
    expect(JSON.parse(overData.stderr).error).toMatch(/restore needs an empty database/);

    const tampered = Buffer.from(readFileSync(backupFile));
    tampered[tampered.length - 10] ^= 0xff;
    const tamperedFile = join(root, 'tampered.msbk');
    writeFileSync(tamperedFile, tampered);
    const emptyDir = join(root, 'empty');
    mkdirSync(emptyDir, { recursive: true, mode: 0o700 });
    copyFileSync(join(dataDir, 'master.key'), join(emptyDir, 'master.key'));
    const bad = await cli(emptyDir, ['restore', tamperedFile]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/failed authentication/);

    // Another key ring: the same empty database, but a different master key.
    writeFileSync(join(emptyDir, 'master.key'), randomBytes(32), { mode: 0o600 });
    const otherKeyRing = await cli(emptyDir, ['restore', backupFile]);
    expect(otherKeyRing.code).toBe(1);
    expect(otherKeyRing.stderr).toMatch(/cannot unwrap the backup key/);
  }, SLOW);
});
