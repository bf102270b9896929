import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalQueue, type LocalQueue } from '#shared/adapters/local-queue/index.ts';
import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { DependencyError } from '#shared/errors.ts';
import { createOutboxRelay, enqueueTasks } from '#shared/outbox/index.ts';
import type { Db } from '#shared/ports/db.ts';
import type { Queue, Task, TaskFamily } from '#shared/ports/queue.ts';
import { createTaskWorker, type TaskHandler } from '#shared/tasks/worker-runtime.ts';
import { createIsolatedPostgres } from './isolated-postgres.ts';

const logger = new Logger({ serviceName: 'outbox-test', logLevel: 'SILENT' });

function task(type = 'record-effect', family: TaskFamily = 'embedding', createdAt = new Date()): Task {
  return { id: randomUUID(), family, tenantId: 'tenant-outbox', type, payload: { n: 1 }, createdAt: createdAt.toISOString() };
}

/** A queue that counts what reaches it and can be taken down, in front of the real local queue. */
function observedQueue(inner: Queue) {
  const sent: string[] = [];
  let down = false;
  const queue: Queue = {
    kind: 'observed',
    async send(tasks) {
      // Yield so that concurrent relays really interleave while rows are claimed.
      await new Promise((resolve) => setImmediate(resolve));
      if (down) throw new DependencyError('queue', 'queue unreachable');
      sent.push(...tasks.map((t) => t.id));
      await inner.send(tasks);
    },
    close: () => inner.close(),
  };
  return { queue, sent, setDown: (value: boolean) => { down = value; } };
}

/** Each task inserts one effect row; a duplicate would show as a second row. */
const recordEffect: TaskHandler = async (t, ctx) => {
  await ctx.transaction((trx) => sql`insert into task_effects (task_id) values (${t.id})`.execute(trx));
};

async function effectCounts(db: Db, ids: string[]): Promise<number[]> {
  const { rows } = await sql<{ task_id: string; n: number }>`
    select task_id, count(*)::int as n from task_effects group by task_id`.execute(db.kysely);
  const byId = new Map(rows.map((r) => [r.task_id, r.n]));
  return ids.map((id) => byId.get(id) ?? 0);
}

/** Commits a change (a tenant row) and its tasks in one transaction, as the services do. */
async function commitChangeWithTasks(db: Db, tasks: Task[]): Promise<string[]> {
  return db.kysely.transaction().execute(async (trx) => {
    await trx.insertInto('tenants').values({ id: `t-${randomUUID()}`, name: 'outbox test' }).execute();
    return enqueueTasks(trx, tasks);
  });
}

interface Harness {
  db: Db;
  /** another connection pool on the same database, as a second Lambda instance would have */
  openSecondDb(): Promise<Db>;
}

function outboxSuite(name: string, open: () => Promise<Harness & { close(): Promise<void> }>) {
  describe(`outbox relay and worker ledger on ${name}`, () => {
    let h: Harness & { close(): Promise<void> };
    let local: LocalQueue;

    beforeAll(async () => {
      h = await open();
      await sql`create table task_effects (task_id text not null)`.execute(h.db.kysely);
    });
    afterAll(async () => {
      await h?.close();
    });
    beforeEach(async () => {
      local = createLocalQueue({ maxReceives: 3 });
      local.consume('embedding', createTaskWorker('embedding', { 'record-effect': recordEffect }, { db: h.db, logger }));
      await sql`delete from outbox`.execute(h.db.kysely);
    });

    it('delivers every task through the sweep when the relay dies between commit and send, each taking effect once even when delivered twice', async () => {
      const tasks = Array.from({ length: 25 }, () => task());
      const ids = await commitChangeWithTasks(h.db, tasks);
      // The relay "dies": relayNow is never called. Nothing reached the queue.
      expect(local.stats('embedding').visible).toBe(0);

      const relay = createOutboxRelay({ db: h.db, queue: local, batchSize: 10 });
      expect(await relay.sweep({ olderThanMs: 0 })).toEqual({ relayed: 25, failed: 0 });
      await local.runUntilIdle({ advanceTime: true });
      expect(await effectCounts(h.db, ids)).toEqual(ids.map(() => 1));

      // A relay that sent and then crashed before marking the rows: everything is sent a second time.
      await sql`update outbox set relayed_at = null where task_id in (${sql.join(ids)})`.execute(h.db.kysely);
      expect(await relay.sweep({ olderThanMs: 0 })).toEqual({ relayed: 25, failed: 0 });
      await local.runUntilIdle({ advanceTime: true });

      expect(await effectCounts(h.db, ids)).toEqual(ids.map(() => 1));
      const ledger = await h.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', 'in', ids).execute();
      expect(ledger).toHaveLength(25);
      expect(local.deadLetters('embedding')).toEqual([]);
    });

    it('relays the given committed tasks right after commit, exactly once', async () => {
      const observed = observedQueue(local);
      const relay = createOutboxRelay({ db: h.db, queue: observed.queue });
      const ids = await commitChangeWithTasks(h.db, [task(), task()]);

      expect(await relay.relayNow(ids)).toEqual({ relayed: 2, failed: 0 });
      expect(await relay.relayNow(ids)).toEqual({ relayed: 0, failed: 0 });
      expect(await relay.sweep({ olderThanMs: 0 })).toEqual({ relayed: 0, failed: 0 });
      expect(observed.sent.sort()).toEqual([...ids].sort());

      await local.runUntilIdle();
      expect(await effectCounts(h.db, ids)).toEqual([1, 1]);
      const rows = await h.db.kysely.selectFrom('outbox').select(['relayed_at']).where('task_id', 'in', ids).execute();
      expect(rows.every((r) => r.relayed_at instanceof Date)).toBe(true);
    });

    it('round-trips a task through the outbox unchanged', async () => {
      const original: Task = { ...task(), tenantId: null, payload: { nested: { list: [1, 'two', null] }, text: 'naïve café' } };
      const received: Task[] = [];
      const relay = createOutboxRelay({ db: h.db, queue: local });
      local.consume('embedding', createTaskWorker('embedding', {
        'record-effect': async (t) => { received.push(t); },
      }, { db: h.db, logger }));
      await commitChangeWithTasks(h.db, [original]);
      await relay.relayNow([original.id]);
      await local.runUntilIdle();
      expect(received).toEqual([original]);
    });

    it('leaves no task behind when the change rolls back', async () => {
      const t = task();
      await expect(h.db.kysely.transaction().execute(async (trx) => {
        await enqueueTasks(trx, [t]);
        throw new Error('change rejected');
      })).rejects.toThrow('change rejected');
      const relay = createOutboxRelay({ db: h.db, queue: local });
      expect(await relay.sweep({ olderThanMs: 0 })).toEqual({ relayed: 0, failed: 0 });
      expect(await h.db.kysely.selectFrom('outbox').select('id').where('task_id', '=', t.id).execute()).toEqual([]);
    });

    it('sweeps only tasks older than the threshold, so it does not race a relay about to run', async () => {
      const old = task('record-effect', 'embedding', new Date(Date.now() - 5 * 60_000));
      const fresh = task();
      await commitChangeWithTasks(h.db, [old, fresh]);
      const observed = observedQueue(local);
      const relay = createOutboxRelay({ db: h.db, queue: observed.queue });

      expect(await relay.sweep({ olderThanMs: 60_000 })).toEqual({ relayed: 1, failed: 0 });
      expect(observed.sent).toEqual([old.id]);
    });

    it('keeps tasks when the queue is down, counts the attempt, and the sweep delivers them once it is back', async () => {
      const observed = observedQueue(local);
      const relay = createOutboxRelay({ db: h.db, queue: observed.queue, logger });
      const ids = await commitChangeWithTasks(h.db, [task(), task(), task()]);

      observed.setDown(true);
      expect(await relay.relayNow(ids)).toEqual({ relayed: 0, failed: 3 });
      const pending = await h.db.kysely.selectFrom('outbox').select(['relayed_at', 'relay_attempts']).where('task_id', 'in', ids).execute();
      expect(pending).toEqual(ids.map(() => ({ relayed_at: null, relay_attempts: 1 })));

      observed.setDown(false);
      expect(await relay.sweep({ olderThanMs: 0 })).toEqual({ relayed: 3, failed: 0 });
      await local.runUntilIdle();
      expect(await effectCounts(h.db, ids)).toEqual([1, 1, 1]);
    });

    it('redelivers, after a restart of the in-memory queue, the tasks it held but never processed', async () => {
      const relay = createOutboxRelay({ db: h.db, queue: local });
      const [done, ...lost] = [task(), task(), task()];
      await commitChangeWithTasks(h.db, [done, ...lost]);
      await relay.relayNow([done.id]);
      await local.runUntilIdle();
      await relay.relayNow(lost.map((t) => t.id));
      // The process stops here: `local` and the two messages in it are gone.

      const restarted = createLocalQueue({ maxReceives: 3 });
      restarted.consume('embedding', createTaskWorker('embedding', { 'record-effect': recordEffect }, { db: h.db, logger }));
      const relayAfterRestart = createOutboxRelay({ db: h.db, queue: restarted });
      expect(await relayAfterRestart.requeueUnprocessed()).toBe(2);
      expect(await relayAfterRestart.sweep({ olderThanMs: 0 })).toEqual({ relayed: 2, failed: 0 });
      await restarted.runUntilIdle();

      expect(await effectCounts(h.db, [done.id, ...lost.map((t) => t.id)])).toEqual([1, 1, 1]);
      expect(await relayAfterRestart.requeueUnprocessed()).toBe(0);
    });

    it('prunes relayed outbox rows and ledger rows past the retention, keeping recent and unrelayed ones', async () => {
      const relay = createOutboxRelay({ db: h.db, queue: local });
      const [oldTask, recentTask, unrelayedTask] = [task(), task(), task()];
      await commitChangeWithTasks(h.db, [oldTask, recentTask, unrelayedTask]);
      await relay.relayNow([oldTask.id, recentTask.id]);
      await local.runUntilIdle();
      const longAgo = sql<Date>`now() - interval '20 days'`;
      await h.db.kysely.updateTable('outbox').set({ relayed_at: longAgo }).where('task_id', '=', oldTask.id).execute();
      await h.db.kysely.updateTable('processed_tasks').set({ processed_at: longAgo }).where('task_id', '=', oldTask.id).execute();

      const pruned = await relay.prune({ olderThanMs: 14 * 24 * 3_600_000 });

      expect(pruned).toEqual({ outbox: 1, processedTasks: 1 });
      const left = await h.db.kysely.selectFrom('outbox').select('task_id').where('task_id', 'in', [oldTask.id, recentTask.id, unrelayedTask.id]).execute();
      expect(left.map((r) => r.task_id).sort()).toEqual([recentTask.id, unrelayedTask.id].sort());
      const ledger = await h.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', 'in', [oldTask.id, recentTask.id]).execute();
      expect(ledger).toEqual([{ task_id: recentTask.id }]);
    });

    it('sends every task exactly once when two sweepers on separate connection pools run at once', async () => {
      const ids = await commitChangeWithTasks(h.db, Array.from({ length: 120 }, () => task()));
      const second = await h.openSecondDb();
      try {
        const observed = observedQueue(local);
        const a = createOutboxRelay({ db: h.db, queue: observed.queue, batchSize: 7 });
        const b = createOutboxRelay({ db: second, queue: observed.queue, batchSize: 7 });
        const [ra, rb] = await Promise.all([a.sweep({ olderThanMs: 0 }), b.sweep({ olderThanMs: 0 })]);

        expect(ra.relayed + rb.relayed).toBe(120);
        expect(observed.sent.sort()).toEqual([...ids].sort());
      } finally {
        if (second !== h.db) await second.close();
      }
    });

    it('runs a task once when two deliveries of it are processed at the same time', async () => {
      const queue = createLocalQueue({ batchSize: 1, concurrency: 2 });
      const second = await h.openSecondDb();
      try {
        // Two workers with their own pools, like two concurrent Lambda invocations.
        const workers = [
          createTaskWorker('embedding', { 'record-effect': recordEffect }, { db: h.db, logger }),
          createTaskWorker('embedding', { 'record-effect': recordEffect }, { db: second, logger }),
        ];
        let next = 0;
        queue.consume('embedding', (event) => workers[next++ % 2](event));
        const t = task();
        await queue.send([t, t]);
        await queue.runUntilIdle();
        expect(await effectCounts(h.db, [t.id])).toEqual([1]);
        expect(queue.stats('embedding')).toMatchObject({ visible: 0, invisible: 0, deadLetters: 0 });
      } finally {
        if (second !== h.db) await second.close();
      }
    });

    it('acknowledges a task already in the ledger without running it', async () => {
      const t = task();
      await h.db.kysely.insertInto('processed_tasks').values({ task_id: t.id, family: 'embedding' }).execute();
      await local.send([t]);
      await local.runUntilIdle();
      expect(await effectCounts(h.db, [t.id])).toEqual([0]);
      expect(local.stats('embedding')).toMatchObject({ visible: 0, invisible: 0, deadLetters: 0 });
    });

    it('rolls back the effects and the ledger row of a failed attempt, so the retry runs the task', async () => {
      let attempts = 0;
      const flaky: TaskHandler = async (t, ctx) => {
        attempts += 1;
        await ctx.transaction(async (trx) => {
          await sql`insert into task_effects (task_id) values (${t.id})`.execute(trx);
          if (attempts === 1) throw new Error('downstream failed mid-transaction');
        });
      };
      local.consume('embedding', createTaskWorker('embedding', { flaky }, { db: h.db, logger }));
      const t = task('flaky');
      await local.send([t]);
      await local.runUntilIdle();
      expect(await effectCounts(h.db, [t.id])).toEqual([0]);

      await local.runUntilIdle({ advanceTime: true });
      expect(attempts).toBe(2);
      expect(await effectCounts(h.db, [t.id])).toEqual([1]);
    });

    it('records a handler that does not use ctx.transaction in the ledger after it succeeds', async () => {
      const runs: string[] = [];
      local.consume('embedding', createTaskWorker('embedding', {
        'no-transaction': async (t) => { runs.push(t.id); },
      }, { db: h.db, logger }));
      const t = task('no-transaction');
      await local.send([t, t]);
      await local.runUntilIdle();
      await local.send([t]);
      await local.runUntilIdle();
      expect(runs).toEqual([t.id]);
      expect(await h.db.kysely.selectFrom('processed_tasks').select('family').where('task_id', '=', t.id).execute())
        .toEqual([{ family: 'embedding' }]);
    });

    it('parks poison messages in the DLQ after max receives while the others of their batch are processed', async () => {
      local.consume('embedding', createTaskWorker('embedding', {
        'record-effect': recordEffect,
        'always-fails': async () => { throw new Error('this task can never succeed'); },
      }, { db: h.db, logger }));
      const tasks = [task(), task('no-such-type'), task(), task('always-fails'), task()];
      await local.send(tasks);

      await local.runUntilIdle({ advanceTime: true });

      const good = [tasks[0], tasks[2], tasks[4]].map((t) => t.id);
      expect(await effectCounts(h.db, good)).toEqual([1, 1, 1]);
      const dead = local.deadLetters('embedding');
      expect(dead.map((d) => (JSON.parse(d.body) as Task).id).sort()).toEqual([tasks[1].id, tasks[3].id].sort());
      expect(dead.map((d) => d.receiveCount)).toEqual([3, 3]);
      const poisonIds = [tasks[1].id, tasks[3].id];
      expect(await h.db.kysely.selectFrom('processed_tasks').select('task_id').where('task_id', 'in', poisonIds).execute()).toEqual([]);
    });
  });
}

outboxSuite('PGlite', async () => {
  const db = await openPgliteDb();
  await migrateToLatest(db.kysely);
  // PGlite has one connection per process: the "second pool" is the same database handle.
  return { db, openSecondDb: async () => db, close: () => db.close() };
});

outboxSuite('PostgreSQL', async () => {
  const pg = await createIsolatedPostgres('outbox');
  const db = await pg.openDb();
  return {
    db,
    openSecondDb: () => pg.openDb(),
    async close() {
      await db.close();
      await pg.drop();
    },
  };
});
