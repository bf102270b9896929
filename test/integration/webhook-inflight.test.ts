import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '#shared/ports/db.ts';
import { acquireInflightSlot } from '#shared/tasks/webhook-delivery.ts';
import { createIsolatedPostgres, type IsolatedPostgres } from './isolated-postgres.ts';

/**
 * The per-endpoint in-flight slots on the machine's PostgreSQL, raced from several connection pools
 * (several worker Lambdas): the cap holds, expired slots are reclaimed, a slot is renewed by its holder.
 */
describe('webhook in-flight slots on PostgreSQL (several pools)', () => {
  let pg: IsolatedPostgres;
  const pools: Db[] = [];
  const tenantId = `org_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    pg = await createIsolatedPostgres('wh_inflight');
    for (let i = 0; i < 4; i++) pools.push(await pg.openDb());
    await pools[0]!.kysely.insertInto('tenants').values({ id: tenantId, name: 'inflight' }).execute();
  }, 120_000);
  afterAll(async () => {
    for (const p of pools) await p.close();
    await pg?.drop();
  });

  async function newHook(): Promise<string> {
    const id = `wh_${randomUUID().replaceAll('-', '')}`;
    await pools[0]!.kysely.insertInto('webhooks').values({ id, tenant_id: tenantId, name: 'h', url: 'https://example.com', events: JSON.stringify(['memory.created']), secret_ciphertext: Buffer.from('x') } as never).execute();
    return id;
  }
  const acquire = (pool: Db, webhookId: string, deliveryId: string, max: number, now = new Date(), leaseMs = 30_000) =>
    acquireInflightSlot(pool.kysely, { tenantId, webhookId, deliveryId, max, now, until: new Date(now.getTime() + leaseMs) });

  it('grants exactly `max` slots to 40 deliveries racing from four pools', async () => {
    const webhookId = await newHook();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => acquire(pools[i % pools.length]!, webhookId, `whd_${i}`, 3)));
    expect(results.filter(Boolean)).toHaveLength(3);
    const rows = await pools[0]!.kysely.selectFrom('webhook_inflight').selectAll().where('webhook_id', '=', webhookId).execute();
    expect(rows).toHaveLength(3);
  });

  it('frees a slot when its lease expires (a crashed worker), renews a holder, and caps each endpoint separately', async () => {
    const a = await newHook();
    const b = await newHook();
    const t0 = new Date();
    expect(await acquire(pools[0]!, a, 'whd_crashed', 1, t0, 1_000)).toBe(true);
    expect(await acquire(pools[1]!, a, 'whd_next', 1, t0)).toBe(false);
    // the other endpoint is not affected by the first one's full slots
    expect(await acquire(pools[2]!, b, 'whd_other', 1, t0)).toBe(true);
    // the holder itself (a redelivered task) renews its slot instead of being refused
    expect(await acquire(pools[3]!, a, 'whd_crashed', 1, new Date(t0.getTime() + 500), 1_000)).toBe(true);
    // after the lease ran out, the slot goes to the next delivery and the dead holder's row is gone
    const later = new Date(t0.getTime() + 2_000);
    expect(await acquire(pools[1]!, a, 'whd_next', 1, later)).toBe(true);
    const rows = await pools[0]!.kysely.selectFrom('webhook_inflight').select('delivery_id').where('webhook_id', '=', a).execute();
    expect(rows.map((r) => r.delivery_id)).toEqual(['whd_next']);
  });

  it('deleting the endpoint removes its slots, and an unknown endpoint gets none', async () => {
    const a = await newHook();
    expect(await acquire(pools[0]!, a, 'whd_1', 2)).toBe(true);
    await pools[0]!.kysely.deleteFrom('webhooks').where('id', '=', a).execute();
    expect(Number((await sql<{ n: number }>`select count(*)::int as n from webhook_inflight where webhook_id = ${a}`.execute(pools[0]!.kysely)).rows[0]!.n)).toBe(0);
    expect(await acquire(pools[0]!, a, 'whd_2', 2)).toBe(false);
  });
});
