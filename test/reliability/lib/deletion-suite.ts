import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import Redis from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { namespaceForUser } from '../../../shared/ports/vector-store.ts';
import { verifyDeletionReceipt, type DeletionReceipt } from '../../../shared/services/deletion-receipts.ts';
import type { MemoryCache } from '../../../shared/adapters/memory-cache/memory-cache.ts';
import { tablesInDependencyOrder } from '../../../shared/db/introspect.ts';
import { newActor } from './actors.ts';
import { recordTable, type Profile } from './report.ts';
import { rowsMentioning, tenantFootprint } from './stores.ts';
import { startTarget, type Target, type TargetKind } from './support.ts';

/** audit_logs outlive deletions by design (who deleted what, never memory text): excluded from leftovers. */
const RETAINED = new Set(['audit_logs']);

async function rowsOfUser(target: Target, userId: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await tablesInDependencyOrder(target.server.app.db.kysely)) {
    if (RETAINED.has(t.name) || !t.columns.some((c) => c.name === 'user_id')) continue;
    const r = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(t.name)} where user_id = ${userId}`.execute(target.server.app.db.kysely);
    if (Number(r.rows[0].n)) out[t.name] = Number(r.rows[0].n);
  }
  const self = await target.server.app.db.kysely.selectFrom('users').select('id').where('id', '=', userId).execute();
  if (self.length) out.users = self.length;
  return out;
}

/** Every live cache entry as key → JSON text: a Redis SCAN of the suite's own server, or the in-process cache's keys. */
async function cacheEntries(target: Target): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (target.redisPort) {
    const client = new Redis({ port: target.redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.set(k, (await client.type(k)) === 'string' ? ((await client.get(k)) ?? '') : '');
    } while (cursor !== '0');
    await client.quit();
    return out;
  }
  const cache = target.server.app.cache as Partial<MemoryCache>;
  if (typeof cache.keys !== 'function') throw new Error(`cannot scan a ${target.server.app.cache.kind} cache`);
  for (const k of cache.keys()) out.set(k, JSON.stringify(await target.server.app.cache.get(k)) ?? '');
  return out;
}

/** Entries whose key names `needle` as one `:`-separated part sequence, or whose value mentions `valueNeedle`. */
function entriesOf(entries: Map<string, string>, keyPattern: RegExp, valueNeedle?: string): string[] {
  return [...entries].filter(([k, v]) => keyPattern.test(k) || (valueNeedle !== undefined && v.includes(valueNeedle))).map(([k]) => k);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Provable deletion: DELETE /memory/user/purge and DELETE /admin/tenants/{id} leave nothing behind in
 * any store (every table, the vector namespaces, Redis keys, object prefixes) and answer a signed
 * receipt that the published key — and `npm run verify-receipt` — verify.
 */
export function deletionSuite(profile: Profile, kinds: TargetKind[]) {
  describe(`provable deletion (${profile})`, { timeout: profile === 'full' ? 600_000 : 240_000 }, () => {
    const targets: Target[] = [];
    afterAll(async () => {
      for (const t of targets) await t.close();
    });

    for (const kind of kinds) {
      it(`on ${kind}: an end-user purge and a tenant deletion leave no row, vector, cache key or object, and their receipts verify`, async () => {
        const adminEmail = `deletion-admin-${Date.now()}@example.com`;
        const target = await startTarget(kind, { PLATFORM_ADMIN_EMAILS: adminEmail });
        targets.push(target);
        const { server } = target;
        const admin = await newActor(server, 'deletion-admin', adminEmail);
        const victim = await newActor(server, 'deletion-victim');
        const h = (user: string) => ({ 'X-API-Key': victim.apiKey, 'X-End-User-ID': user });
        for (const user of ['alice', 'bob']) {
          for (let i = 0; i < 5; i++) {
            const res = await server.call('POST', '/memory/add', { headers: h(user), body: { text: `${user} keeps note number ${i} about the garden`, tags: ['t'] } });
            expect(res.status).toBe(201);
          }
          await server.call('POST', '/memory/query', { headers: h(user), body: { query: 'garden', k: 3 } }); // warms the query cache
        }
        await server.queue?.runUntilIdle();
        const users = await server.app.db.kysely.selectFrom('users').select(['id', 'external_id']).where('tenant_id', '=', victim.tenantId).where('kind', '=', 'end_user').execute();
        const alice = users.find((u) => u.external_id?.endsWith(':alice'))!;
        const bob = users.find((u) => u.external_id?.endsWith(':bob'))!;
        const published = (await server.call('GET', '/.well-known/memorysync-receipt-key')).body;

        // -- end-user purge
        // alice's entries: every key with {tenant}:{alice's user id} as a part (query results q:…, generation qgen:…)
        const aliceKeyPattern = new RegExp(`(^|:)${escapeRe(victim.tenantId)}:${alice.id}(:|$)`);
        const aliceCacheBefore = entriesOf(await cacheEntries(target), aliceKeyPattern);
        const aliceQueryEntriesBefore = aliceCacheBefore.filter((k) => /(^|:)q:/.test(k)).length;
        expect(aliceQueryEntriesBefore, 'the warm-up query cached a result for alice').toBeGreaterThan(0);
        const purge = await server.call('DELETE', '/memory/user/purge', { headers: h('alice') });
        expect(purge.status).toBe(200);
        expect(purge.body.cache_pending).toBe(false);
        const purgeReceipt = purge.body.receipt as DeletionReceipt;
        expect(purgeReceipt.subject).toEqual({ type: 'end_user', tenant_id: victim.tenantId, end_user_id: 'alice' });
        expect(purgeReceipt.deleted.memories).toBe(5);
        // the generation key by name, plus every cached query result found by prefix
        expect(purgeReceipt.deleted.cache_keys).toBe(1 + aliceQueryEntriesBefore);
        expect(verifyDeletionReceipt(purgeReceipt, published)).toEqual({ valid: true });
        expect(verifyDeletionReceipt({ ...purgeReceipt, deleted: { ...purgeReceipt.deleted, memories: 4 } }, published).valid).toBe(false);
        await server.queue?.runUntilIdle();
        const aliceRows = await rowsOfUser(target, alice.id);
        delete aliceRows.users; // the end-user row itself is an id holder without data; the purge keeps it
        const aliceVectors = await server.app.vectors.listIds(namespaceForUser(alice.id));
        const aliceCache = entriesOf(await cacheEntries(target), aliceKeyPattern);
        expect(aliceRows).toEqual({});
        expect(aliceVectors).toEqual([]);
        expect(aliceCache, 'cache entries of the purged end user').toEqual([]);
        const bobStill = await server.call('GET', '/memory/export', { headers: h('bob') });
        expect(bobStill.body.total).toBe(5);

        // -- tenant deletion
        const before = await tenantFootprint(server.app.db.kysely, victim.tenantId);
        const wrapped = (await server.app.db.kysely.selectFrom('tenants').select('data_key_wrapped').where('id', '=', victim.tenantId).executeTakeFirstOrThrow()).data_key_wrapped;
        // the tenant's entries: its id in the key, or in the cached value (principals of its keys and sessions)
        const tenantKeyPattern = new RegExp(`(^|:)${escapeRe(victim.tenantId)}(:|$)`);
        const tenantCacheBefore = entriesOf(await cacheEntries(target), tenantKeyPattern, victim.tenantId);
        expect(tenantCacheBefore.some((k) => /(^|:)whsub:/.test(k)), 'a webhook-subscription flag was cached').toBe(true);
        const del = await server.call('DELETE', `/admin/tenants/${victim.tenantId}`, { headers: { Authorization: `Bearer ${admin.token}` } });
        expect(del.status).toBe(200);
        const tenantReceipt = del.body.receipt as DeletionReceipt;
        expect(tenantReceipt.subject).toEqual({ type: 'tenant', tenant_id: victim.tenantId });
        expect(tenantReceipt.deleted.data_keys).toBe(1);
        expect(del.body.cache_pending).toBe(false);
        expect(tenantReceipt.deleted.cache_entries).toBeGreaterThanOrEqual(tenantCacheBefore.length);
        expect(verifyDeletionReceipt(tenantReceipt, published)).toEqual({ valid: true });
        await server.queue?.runUntilIdle();

        const after = await tenantFootprint(server.app.db.kysely, victim.tenantId);
        delete after.audit_logs;
        const mentions = await rowsMentioning(server.app.db.kysely, victim.tenantId, RETAINED);
        const bobVectors = await server.app.vectors.listIds(namespaceForUser(bob.id));
        const tenantCache = entriesOf(await cacheEntries(target), tenantKeyPattern, victim.tenantId);
        const objects = await server.app.objects.list(`${victim.tenantId}/`).catch(() => []);
        expect(after).toEqual({});
        expect(mentions).toEqual({});
        expect(bobVectors).toEqual([]);
        expect(tenantCache, 'cache entries of the deleted tenant (by key or value)').toEqual([]);
        expect(objects).toEqual([]);
        // the data key is destroyed: no wrapped copy anywhere, no way to get the plaintext key, the old key is refused
        expect(wrapped).toBeTruthy();
        server.app.tenantKeys.forget(victim.tenantId);
        await expect(server.app.tenantKeys.forTenant(victim.tenantId)).rejects.toThrow();
        expect(await rowsMentioning(server.app.db.kysely, Buffer.from(wrapped!).toString('hex').slice(0, 32), RETAINED)).toEqual({});
        expect((await server.call('POST', '/memory/query', { headers: h('bob'), body: { query: 'garden' } })).status).toBe(401);

        // the documented command verifies the receipt (full run only: it spawns a process)
        let cli = 'not run (fast subset)';
        if (profile === 'full') {
          const dir = mkdtempSync(join(tmpdir(), 'receipt-'));
          writeFileSync(join(dir, 'purge.json'), JSON.stringify(purge.body));
          writeFileSync(join(dir, 'key.json'), JSON.stringify(published));
          writeFileSync(join(dir, 'forged.json'), JSON.stringify({ ...purgeReceipt, at: new Date(0).toISOString() }));
          const ok = spawnSync('npx', ['tsx', 'scripts/verify-receipt.ts', join(dir, 'purge.json'), '--key', join(dir, 'key.json')], { encoding: 'utf8' });
          const bad = spawnSync('npx', ['tsx', 'scripts/verify-receipt.ts', join(dir, 'forged.json'), '--key', join(dir, 'key.json')], { encoding: 'utf8' });
          expect(ok.status, ok.stdout + ok.stderr).toBe(0);
          expect(bad.status).toBe(1);
          cli = 'genuine: exit 0; forged: exit 1';
        }

        recordTable({
          section: 'deletion',
          title: `${target.label}`,
          columns: ['deletion', 'receipt (deleted per store)', 'rows left', 'vectors left', `cache entries left (${target.redisPort ? 'Redis SCAN' : 'in-process cache keys'}; key or value naming the subject)`, 'objects left', 'receipt verifies'],
          rows: [
            ['DELETE /memory/user/purge (alice)', JSON.stringify(purgeReceipt.deleted), Object.keys(aliceRows).length, aliceVectors.length, `${aliceCache.length} (of ${aliceCacheBefore.length} before)`, '—', `yes; tampered: no; CLI ${cli}`],
            ['DELETE /admin/tenants/{id}', JSON.stringify(tenantReceipt.deleted), `${Object.keys(after).length} (footprint before: ${JSON.stringify(before)})`, bobVectors.length, `${tenantCache.length} (of ${tenantCacheBefore.length} before)`, objects.length, 'yes; data key destroyed, old key 401'],
          ],
          notes: ['audit_logs rows are kept on purpose (who deleted what, never memory text) and are excluded from the leftovers scan; the end-user id row itself (no data) survives a purge.'],
        });
      });
    }
  });
}
