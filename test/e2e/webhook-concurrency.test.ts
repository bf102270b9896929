import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signupOwner } from '../support/accounts.ts';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';

const CAP = 2;

/** An HTTP receiver that answers after `delayMs` and records how many requests it had open at once. */
async function countingReceiver(delayMs: number) {
  const r = { url: '', open: 0, maxOpen: 0, deliveries: [] as string[], server: undefined as unknown as Server };
  r.server = createServer((req, res) => {
    r.open += 1;
    r.maxOpen = Math.max(r.maxOpen, r.open);
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        r.deliveries.push(String(req.headers['x-memorysync-delivery']));
        r.open -= 1;
        res.writeHead(200).end('ok');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
  return r;
}

describe(`per-endpoint webhook concurrency cap (WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT=${CAP})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true', WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: String(CAP) });
  });
  afterAll(() => server.stop());

  it('a slow endpoint never sees more than the cap in flight, the fast one gets every event, and deferrals are not attempts', async () => {
    const slow = await countingReceiver(400);
    const fast = await countingReceiver(0);
    try {
      const owner = await signupOwner(server, 'wh-cap');
      const key = (await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'svc' } })).body.key as string;
      const hooks = [];
      for (const [name, r] of [['slow', slow], ['fast', fast]] as const) {
        const res = await server.call('POST', '/org/webhooks', { headers: bearer(owner.token), body: { name, url: r.url, events: ['memory.created'] } });
        expect(res.status).toBe(201);
        hooks.push(res.body.id as string);
      }
      const events = 12;
      for (let i = 0; i < events; i++) {
        expect((await server.call('POST', '/memory/add', { headers: keyHeaders(key, 'cap-user'), body: { text: `Event number ${i} for both endpoints.` } })).status).toBe(201);
      }
      for (let round = 0; round < 50 && (slow.deliveries.length < events || fast.deliveries.length < events); round++) {
        await server.app.relay.relayNow();
        await server.queue!.runUntilIdle({ advanceTime: true });
      }

      expect(fast.deliveries).toHaveLength(events);
      expect(slow.deliveries).toHaveLength(events);
      expect(new Set(slow.deliveries).size).toBe(events);
      expect(slow.maxOpen).toBeLessThanOrEqual(CAP);
      // the cap was actually reached (the queue offered more than CAP at once), not merely never tested
      expect(slow.maxOpen).toBe(CAP);

      // every delivery went out once: one attempt row each, status delivered; deferrals left no attempt
      const rows = await server.app.db.kysely.selectFrom('webhook_deliveries').select(['id', 'status', 'attempts']).where('tenant_id', '=', owner.tenantId).execute();
      expect(rows).toHaveLength(events * 2);
      expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
      const attempts = await server.app.db.kysely.selectFrom('webhook_delivery_attempts').select('delivery_id').where('tenant_id', '=', owner.tenantId).execute();
      expect(attempts).toHaveLength(events * 2);
      // no slot is left held once everything is delivered
      expect(await server.app.db.kysely.selectFrom('webhook_inflight').selectAll().where('tenant_id', '=', owner.tenantId).execute()).toEqual([]);
      const deferred = await server.app.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', 'like', '%:defer-%').execute();
      expect(deferred.length).toBeGreaterThan(0);
    } finally {
      for (const r of [slow, fast]) {
        r.server.closeAllConnections();
        await new Promise((resolve) => r.server.close(resolve));
      }
    }
  });
});
