import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Db } from '#shared/ports/db.ts';
import {
  createScheduleHandler,
  createScheduler,
  releaseLease,
  renewLease,
  tryAcquireLease,
  type JobContext,
} from '#shared/scheduler/index.ts';
import { createIsolatedPostgres } from './isolated-postgres.ts';

const logger = new Logger({ serviceName: 'scheduler-test', logLevel: 'SILENT' });

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** Makes a lease look as if its holder vanished long ago, without waiting for it to expire. */
async function expireLease(db: Db, job: string): Promise<void> {
  await db.kysely.updateTable('job_leases').set({ expires_at: sql`now() - interval '1 second'` }).where('job', '=', job).execute();
}

interface Harness {
  db: Db;
  /** a second connection pool on the same database: another Lambda instance or server process */
  other: Db;
  close(): Promise<void>;
}

function leaseSuite(name: string, open: () => Promise<Harness>) {
  describe(`scheduler leases on ${name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await open();
    });
    afterAll(async () => {
      await h?.close();
    });

    it('lets exactly one of many schedulers racing for the same job run it', async () => {
      for (let round = 0; round < 5; round++) {
        const job = `race-${randomUUID()}`;
        const gate = deferred();
        const secondRun = deferred();
        let runs = 0;
        const definition = {
          name: job,
          everyMs: 60_000,
          run: async () => {
            runs += 1;
            if (runs > 1) secondRun.resolve();
            await gate.promise;
          },
        };
        const schedulers = [h.db, h.other].map((db, i) => createScheduler({ db, jobs: [definition], holder: `node-${i}`, logger }));
        const attempts = Array.from({ length: 8 }, (_, i) => schedulers[i % 2].runJob(job));
        // The winner waits at the gate, so every other attempt must come back skipped first
        // (a second run entering the job ends the wait at once, and the test fails).
        const settled: string[] = [];
        const allButOneSettled = new Promise<void>((resolve) => {
          for (const attempt of attempts) {
            void attempt.then((r) => {
              settled.push(r.status);
              if (settled.length === attempts.length - 1) resolve();
            });
          }
        });
        await Promise.race([allButOneSettled, secondRun.promise]);
        expect(runs).toBe(1);
        expect(settled).toEqual(Array(7).fill('skipped'));
        gate.resolve();
        const results = await Promise.all(attempts);
        expect(results.filter((r) => r.status === 'ran')).toHaveLength(1);
        expect(runs).toBe(1);
      }
    });

    it('hands out a larger fencing token on every acquisition', async () => {
      const job = `fenced-${randomUUID()}`;
      const tokens: number[] = [];
      const scheduler = createScheduler({
        db: h.db,
        jobs: [{ name: job, everyMs: 1_000, run: async (ctx: JobContext) => { tokens.push(ctx.fencingToken); } }],
        logger,
      });
      const results = [await scheduler.runJob(job), await scheduler.runJob(job), await scheduler.runJob(job)];
      expect(results.map((r) => r.status)).toEqual(['ran', 'ran', 'ran']);
      expect(tokens).toEqual([1, 2, 3]);
    });

    it('refuses a held lease, lets an expired one be taken over, and fences out the stale holder', async () => {
      const job = `takeover-${randomUUID()}`;
      const first = await tryAcquireLease(h.db.kysely, job, 'node-a', 60_000);
      expect(first).toEqual({ fencingToken: 1 });
      expect(await tryAcquireLease(h.other.kysely, job, 'node-b', 60_000)).toBeUndefined();

      await expireLease(h.db, job);
      const second = await tryAcquireLease(h.other.kysely, job, 'node-b', 60_000);
      expect(second).toEqual({ fencingToken: 2 });

      expect(await renewLease(h.db.kysely, job, first!.fencingToken, 60_000)).toBe(false);
      expect(await releaseLease(h.db.kysely, job, first!.fencingToken)).toBe(false);
      expect(await tryAcquireLease(h.db.kysely, job, 'node-a', 60_000)).toBeUndefined();
      const row = await h.db.kysely.selectFrom('job_leases').selectAll().where('job', '=', job).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ holder: 'node-b', fencing_token: 2 });

      expect(await renewLease(h.other.kysely, job, second!.fencingToken, 60_000)).toBe(true);
      expect(await releaseLease(h.other.kysely, job, second!.fencingToken)).toBe(true);
      expect(await tryAcquireLease(h.db.kysely, job, 'node-a', 60_000)).toEqual({ fencingToken: 3 });
    });

    it('skips a run while the job is running elsewhere instead of queueing it, and records when runs start and finish', async () => {
      const job = `collapse-${randomUUID()}`;
      let runs = 0;
      const scheduler = createScheduler({ db: h.db, jobs: [{ name: job, everyMs: 1_000, run: async () => { runs += 1; } }], logger });
      const elsewhere = await tryAcquireLease(h.other.kysely, job, 'elsewhere', 60_000);
      expect(await scheduler.runJob(job)).toEqual({ job, status: 'skipped' });
      expect(await scheduler.runJob(job)).toEqual({ job, status: 'skipped' });
      expect(runs).toBe(0);

      await releaseLease(h.other.kysely, job, elsewhere!.fencingToken);
      expect(await scheduler.runJob(job)).toMatchObject({ status: 'ran' });
      expect(runs).toBe(1);
      const row = await h.db.kysely.selectFrom('job_leases').selectAll().where('job', '=', job).executeTakeFirstOrThrow();
      expect(row.expires_at).toBeNull();
      expect(row.last_finished_at!.getTime()).toBeGreaterThanOrEqual(row.last_started_at!.getTime());
    });

    it('releases the lease of a failed run so the next run need not wait for expiry', async () => {
      const job = `failing-${randomUUID()}`;
      let fail = true;
      const scheduler = createScheduler({
        db: h.db,
        jobs: [{ name: job, everyMs: 1_000, run: async () => { if (fail) throw new Error('backup target unreachable'); } }],
        logger,
      });
      expect(await scheduler.runJob(job)).toMatchObject({ status: 'failed', fencingToken: 1, error: 'Error: backup target unreachable' });
      fail = false;
      expect(await scheduler.runJob(job)).toEqual({ job, status: 'ran', fencingToken: 2 });
    });

    it('keeps renewing the lease of a long run, and aborts the run once another holder took it over', async () => {
      const job = `long-${randomUUID()}`;
      const renewed = deferred();
      const scheduler = createScheduler({
        db: h.db,
        jobs: [{
          name: job,
          everyMs: 60_000,
          leaseTtlMs: 1_500,
          run: async (ctx) => {
            const initial = await leaseExpiry(h.db, job);
            // Wait for a heartbeat to push the expiry forward.
            while (!ctx.signal.aborted && (await leaseExpiry(h.db, job)) <= initial) await new Promise((r) => setTimeout(r, 10));
            expect(ctx.signal.aborted).toBe(false);
            renewed.resolve();
            // Another node takes the lease over; the next heartbeat notices and aborts this run.
            await expireLease(h.db, job);
            expect(await tryAcquireLease(h.other.kysely, job, 'usurper', 60_000)).toEqual({ fencingToken: ctx.fencingToken + 1 });
            if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
          },
        }],
        logger,
      });
      expect(await scheduler.runJob(job)).toMatchObject({ status: 'ran' });
      await renewed.promise;
      // The aborted run could not release the usurper's lease.
      const row = await h.db.kysely.selectFrom('job_leases').selectAll().where('job', '=', job).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ holder: 'usurper', fencing_token: 2 });
      expect(row.expires_at).not.toBeNull();
    });

    it('runs jobs on local timers one at a time, with no pile-up after a slow run, and stops cleanly', async () => {
      const job = `timers-${randomUUID()}`;
      const events: string[] = [];
      const gates = [deferred(), deferred()];
      const thirdStarted = deferred();
      let started = 0;
      const scheduler = createScheduler({
        db: h.db,
        jobs: [{
          name: job,
          everyMs: 1,
          runOnStart: true,
          run: async (ctx) => {
            const n = started++;
            events.push(`start-${n}`);
            if (n === 0) {
              // A slow run: it outlasts several of its 1 ms periods.
              for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
            }
            if (n < 2) await gates[n].promise;
            else {
              thirdStarted.resolve();
              await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
            }
            events.push(`end-${n}`);
          },
        }],
        logger,
      });
      scheduler.start();
      // Each run is slow compared with its 1 ms period; releasing them one by one must yield strictly
      // alternating starts and ends, never two runs at once nor a burst of catch-up runs.
      gates[0].resolve();
      gates[1].resolve();
      await thirdStarted.promise;
      await scheduler.stop(60_000);
      const count = started;
      expect(events).toEqual(Array.from({ length: count }, (_, n) => [`start-${n}`, `end-${n}`]).flat());
      expect(count).toBe(3);
      const row = await h.db.kysely.selectFrom('job_leases').selectAll().where('job', '=', job).executeTakeFirstOrThrow();
      expect(row.expires_at).toBeNull();
    });

    it('serves EventBridge schedule events through one handler', async () => {
      const ran: string[] = [];
      const scheduler = createScheduler({
        db: h.db,
        jobs: [
          { name: 'outbox-sweep', everyMs: 60_000, run: async () => { ran.push('outbox-sweep'); } },
          { name: 'usage-rollup', everyMs: 3_600_000, run: async () => { throw new Error('rollup failed'); } },
        ],
        holder: `handler-${randomUUID()}`,
        logger,
      });
      const handler = createScheduleHandler(scheduler);
      await expect(handler({ job: 'outbox-sweep' })).resolves.toMatchObject({ job: 'outbox-sweep', status: 'ran' });
      expect(ran).toEqual(['outbox-sweep']);
      await expect(handler({ job: 'usage-rollup' })).rejects.toThrow('Job usage-rollup failed: Error: rollup failed');
      await expect(handler({ job: 'no-such-job' })).rejects.toThrow('Unknown job: no-such-job');
      await expect(handler({ detail: {} })).rejects.toThrow('Schedule event must be');
    });
  });
}

async function leaseExpiry(db: Db, job: string): Promise<number> {
  const row = await db.kysely.selectFrom('job_leases').select('expires_at').where('job', '=', job).executeTakeFirstOrThrow();
  return row.expires_at?.getTime() ?? 0;
}

leaseSuite('PostgreSQL (two connection pools)', async () => {
  const pg = await createIsolatedPostgres('scheduler');
  const [db, other] = [await pg.openDb(), await pg.openDb()];
  return {
    db,
    other,
    async close() {
      await Promise.all([db.close(), other.close()]);
      await pg.drop();
    },
  };
});

leaseSuite('PGlite', async () => {
  const db = await openPgliteDb();
  await migrateToLatest(db.kysely);
  return { db, other: db, close: () => db.close() };
});
