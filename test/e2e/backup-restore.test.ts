import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsObjectStore } from '#shared/adapters/fs-objects/index.ts';
import { createLocalKeyRing } from '#shared/adapters/local-keys/index.ts';
import { restoreBackup } from '#shared/backup/index.ts';
import { BACKUP_KEEP, BACKUP_PREFIX, runBackup } from '#shared/tasks/backup-job.ts';
import { reindex } from '#shared/tasks/reindex.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { MovableClock, seedMemories, sentences } from '../support/worker-fixtures.ts';

/**
 * The daily backup job writes an encrypted export to the object store; after the database is lost,
 * restoring it into an empty one and reindexing answers the same queries with the same memories.
 */
describe('encrypted backup → wipe → restore', () => {
  const masterKey = randomBytes(32);
  const root = mkdtempSync(join(tmpdir(), 'memorysync-backup-test-'));
  const objects = createFsObjectStore({ root });
  const clock = new MovableClock();
  const overrides = () => ({ keyRing: createLocalKeyRing({ masterKey }), objects, clock });
  let first: TestServer;
  let second: TestServer | undefined;
  let tenants: Array<{ apiKey: string; tenantId: string }>;
  const queries = ['sourdough bread', 'marathon training', 'kubernetes cluster', 'dentist visit'];

  const answers = async (server: TestServer) => {
    const out: unknown[] = [];
    for (const t of tenants) {
      for (const query of queries) {
        const res = await server.call('POST', '/memory/query', { headers: keyHeaders(t.apiKey, 'owner'), body: { query, k: 3 } });
        expect(res.status).toBe(200);
        out.push(res.body.memories.map((m: { id: number; text: string }) => [m.id, m.text]));
      }
    }
    return out;
  };

  beforeAll(async () => {
    first = await startTestServer({}, overrides());
    tenants = [await first.newTenant('backup A'), await first.newTenant('backup B')];
    await seedMemories(first, tenants[0].apiKey, 'owner', sentences(30, 'A '));
    await seedMemories(first, tenants[1].apiKey, 'owner', sentences(20, 'B '));
  });
  afterAll(async () => {
    await first.stop().catch(() => {});
    await second?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('the backup job stores a sealed export: no memory text or key material readable in the object', async () => {
    expect((await first.scheduler.runJob('backup')).status).toBe('ran');
    const keys = await objects.list(BACKUP_PREFIX);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^backups\/memorysync-2026-01-05T10-00-00-000Z\.msbk$/);
    const bytes = Buffer.from((await objects.get(keys[0]))!);
    expect(bytes.subarray(0, 6).toString()).toBe('MSBK1 ');
    expect(bytes.includes(Buffer.from('sourdough'))).toBe(false);
    expect(bytes.includes(Buffer.from(tenants[0].apiKey))).toBe(false);
    const header = JSON.parse(bytes.subarray(6, bytes.indexOf(0x0a)).toString());
    expect(header).toMatchObject({ format: 'memorysync-backup', version: 1, created_at: clock.now().toISOString(), key: { context: 'memorysync-backup', key_ring: 'local' } });
  });

  it('restores into an empty database; after a reindex the same queries find the same memories', async () => {
    const before = await answers(first);
    const [key] = await objects.list(BACKUP_PREFIX);
    await first.stop();

    second = await startTestServer({}, overrides());
    const empty = await second.app.db.kysely.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(empty.n)).toBe(0);
    // the old tenants and API keys do not exist here yet
    expect(await second.app.db.kysely.selectFrom('api_keys').select('id').execute()).toEqual([]);

    const restored = await restoreBackup({ db: second.app.db.kysely, keyRing: second.app.keyRing }, (await objects.get(key))!);
    expect(restored.tables.memories).toBe(50);
    const r = await reindex({ db: second.app.db.kysely, memories: second.app.memories, embedder: second.app.embedder, clock }, {});
    expect(r.reindexed).toBe(50);
    expect(await answers(second)).toEqual(before);
    // ids keep counting after the restored ones
    const [next] = await seedMemories(second, tenants[0].apiKey, 'owner', ['A fresh memory after the restore.']);
    expect(next).toBeGreaterThan(50);
  });

  it('refuses a restore into a database that has data, and a backup sealed under another master key', async () => {
    const [key] = await objects.list(BACKUP_PREFIX);
    const bytes = (await objects.get(key))!;
    await expect(restoreBackup({ db: second!.app.db.kysely, keyRing: second!.app.keyRing }, bytes)).rejects.toThrow(/empty database/);
    await expect(restoreBackup({ db: second!.app.db.kysely, keyRing: createLocalKeyRing({ masterKey: randomBytes(32) }) }, bytes)).rejects.toThrow(/cannot unwrap the backup key/);
  });

  it('keeps the newest backups only', async () => {
    for (let i = 0; i < BACKUP_KEEP + 2; i++) {
      clock.advanceDays(1);
      await runBackup(second!.app);
    }
    const keys = await objects.list(BACKUP_PREFIX);
    expect(keys).toHaveLength(BACKUP_KEEP);
    expect(keys.sort().at(-1)).toContain(clock.now().toISOString().slice(0, 10));
  });
});
