import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Db } from '#shared/ports/db.ts';

/**
 * The Db port's contract: the schema migrates, ids come back as numbers, transactions are atomic,
 * the unique indexes behind dedupe and idempotency hold, arrays/jsonb/timestamps round-trip.
 * Every database the project runs on (PGlite, PostgreSQL) must pass it unchanged.
 */
export function dbContract(name: string, factory: () => Promise<{ db: Db; cleanup?: () => Promise<void> }>) {
  describe(`Db contract: ${name}`, () => {
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      ({ db, cleanup } = await factory());
      await migrateToLatest(db.kysely);
    });
    afterAll(async () => {
      await db.close();
      await cleanup?.();
    });

    const tenant = async (id: string) => {
      await db.kysely.insertInto('tenants').values({ id, name: id, data_key_wrapped: null }).execute();
      const u = await db.kysely.insertInto('users').values({ public_id: `usr_${id}`, tenant_id: id, kind: 'end_user', external_id: `${id}:u`, email: null, password_hash: null, full_name: null }).returning('id').executeTakeFirstOrThrow();
      return u.id;
    };
    const memory = (tenantId: string, userId: number, over: Record<string, unknown> = {}) => ({
      tenant_id: tenantId, project_id: null, user_id: userId, text_ciphertext: new Uint8Array([1, 2, 3]), content_hash: 'h',
      dedupe_key: null, summary_ciphertext: null, key_points: JSON.stringify(['a']), tags: ['x', 'y'], source: 's', event_type: null,
      metadata: JSON.stringify({ nested: { ok: true } }), idempotency_key: null, embedding_model: null, expires_at: null,
      archive_at: null, retention_expires_at: null, hard_delete_at: null, deleted_at: null, ...over,
    });

    it('migrating again is a no-op', async () => {
      expect(await migrateToLatest(db.kysely)).toEqual([]);
    });

    it('health answers true', async () => {
      expect(await db.health()).toBe(true);
    });

    it('returns bigint ids as numbers and round-trips arrays, jsonb, bytea and timestamps', async () => {
      const userId = await tenant('t_types');
      const row = await db.kysely.insertInto('memories').values(memory('t_types', userId)).returningAll().executeTakeFirstOrThrow();
      expect(typeof row.id).toBe('number');
      expect(row.tags).toEqual(['x', 'y']);
      expect(row.metadata).toEqual({ nested: { ok: true } });
      expect(row.key_points).toEqual(['a']);
      expect(Array.from(row.text_ciphertext)).toEqual([1, 2, 3]);
      expect(row.created_at).toBeInstanceOf(Date);
      expect(typeof row.importance).toBe('number');
    });

    it('rolls back every statement of a failed transaction', async () => {
      const userId = await tenant('t_tx');
      await expect(
        db.kysely.transaction().execute(async (trx) => {
          await trx.insertInto('memories').values(memory('t_tx', userId)).execute();
          await trx.insertInto('audit_logs').values({ tenant_id: 't_tx', user_id: null, principal: null, event_type: 'x', category: 'data', resource_type: null, resource_id: null, action: 'create', status: 'success', status_code: 201, ip_address: null, user_agent: null, request_id: null, payload_json: '{}' }).execute();
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const n = await db.kysely.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', 't_tx').executeTakeFirstOrThrow();
      const a = await db.kysely.selectFrom('audit_logs').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', 't_tx').executeTakeFirstOrThrow();
      expect(Number(n.n)).toBe(0);
      expect(Number(a.n)).toBe(0);
    });

    it('enforces one deduplicated row per content hash and end user, but allows undeduplicated twins', async () => {
      const userId = await tenant('t_dedupe');
      await db.kysely.insertInto('memories').values(memory('t_dedupe', userId, { dedupe_key: 'k1' })).execute();
      const second = await db.kysely.insertInto('memories').values(memory('t_dedupe', userId, { dedupe_key: 'k1' })).onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
      expect(second).toBeUndefined();
      await db.kysely.insertInto('memories').values(memory('t_dedupe', userId, { dedupe_key: null })).execute();
      await db.kysely.insertInto('memories').values(memory('t_dedupe', userId, { dedupe_key: null })).execute();
    });

    it('enforces idempotency keys per end user', async () => {
      const userId = await tenant('t_idem');
      await db.kysely.insertInto('memories').values(memory('t_idem', userId, { idempotency_key: 'turn-1' })).execute();
      await expect(db.kysely.insertInto('memories').values(memory('t_idem', userId, { idempotency_key: 'turn-1' })).execute()).rejects.toThrow();
    });

    it('cascades a tenant delete to its users, projects and memories', async () => {
      const userId = await tenant('t_del');
      await db.kysely.insertInto('memories').values(memory('t_del', userId)).execute();
      await db.kysely.deleteFrom('tenants').where('id', '=', 't_del').execute();
      const left = await db.kysely.selectFrom('memories').select('id').where('tenant_id', '=', 't_del').execute();
      expect(left).toEqual([]);
    });

    it('supports FOR UPDATE SKIP LOCKED and upserts with expressions', async () => {
      await db.kysely.insertInto('tenants').values({ id: 't_usage', name: 'u', data_key_wrapped: null }).execute();
      for (let i = 0; i < 3; i++) {
        await db.kysely.insertInto('usage_counters').values({ tenant_id: 't_usage', period: '2026-11', adds: 1, queries: 0 })
          .onConflict((oc) => oc.columns(['tenant_id', 'period']).doUpdateSet({ adds: sql`usage_counters.adds + 1` })).execute();
      }
      const rows = await db.kysely.transaction().execute((trx) => trx.selectFrom('usage_counters').selectAll().where('tenant_id', '=', 't_usage').forUpdate().skipLocked().execute());
      expect(rows[0].adds).toBe(3);
    });
  });
}
