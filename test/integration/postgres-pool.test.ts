import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresDb, type PostgresDb, type PostgresDbOptions } from '#shared/adapters/postgres/postgres-db.ts';
import { toAppError } from '#shared/http/middleware/error-handler.ts';
import { freshSchema, PG_URL } from '../support/pg-schema.ts';
import { startTestServer } from '../support/server.ts';
import { tcpProxy } from '../reliability/lib/faults.ts';

/**
 * The pool's two budgets on the machine's PostgreSQL: waiting for a busy pool is backpressure (requests
 * queue and succeed, or get 503 SERVICE_OVERLOADED past the acquire budget or a full queue), while a
 * database that cannot be reached is still the 503 SERVICE_UNAVAILABLE outage answer.
 */
describe('PostgreSQL pool: overload is not an outage', { timeout: 120_000 }, () => {
  const opened: PostgresDb[] = [];
  const open = async (options: Partial<PostgresDbOptions>) => {
    const db = await openPostgresDb({ connectionString: PG_URL, enableVector: false, ...options });
    opened.push(db);
    return db;
  };
  const sleep = (db: PostgresDb, seconds: number) => sql`select pg_sleep(${seconds})`.execute(db.kysely);
  /** what the error handler makes of a rejection */
  const answerOf = async (promise: Promise<unknown>) => {
    try {
      await promise;
      return { status: 200, code: 'OK', headers: {} as Record<string, string> };
    } catch (error) {
      const e = toAppError(error);
      return { status: e.status, code: e.code, headers: e.headers ?? {} };
    }
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close().catch(() => undefined)));
  });

  it('queues requests for a saturated tiny pool and answers every one, even when the wait is far longer than the connect budget', async () => {
    const db = await open({ maxConnections: 2, connectionTimeoutMs: 300, acquireTimeoutMs: 30_000 });
    const queries = Array.from({ length: 12 }, () => sleep(db, 0.25));
    await new Promise((resolve) => setImmediate(resolve));
    const waitingWhileBusy = db.poolStats().waiting;

    const results = await Promise.allSettled(queries);

    // 12 queries over 2 connections: 10 waited, the last ones ~1.25 s, four times the 300 ms connect budget
    expect(waitingWhileBusy).toBeGreaterThanOrEqual(8);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'fulfilled'));
    expect(db.poolStats()).toMatchObject({ total: 2, waiting: 0, overloadedTimeout: 0, overloadedQueueFull: 0 });
  });

  it('answers 503 SERVICE_OVERLOADED with Retry-After when no connection frees up within the acquire budget', async () => {
    const db = await open({ maxConnections: 1, acquireTimeoutMs: 200 });
    const order: string[] = [];
    const holder = sleep(db, 2).then(() => order.push('holder done'));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the holder has the only connection

    const waiter = sleep(db, 0).then(
      () => order.push('waiter answered'),
      (error: unknown) => {
        order.push('waiter refused');
        throw error;
      },
    );
    const answer = await answerOf(waiter);
    await holder;

    expect(answer).toEqual({ status: 503, code: 'SERVICE_OVERLOADED', headers: { 'Retry-After': '2' } });
    expect(order).toEqual(['waiter refused', 'holder done']);
    expect(db.poolStats().overloadedTimeout).toBe(1);
  });

  it('bounds the wait queue: one request more than DATABASE_POOL_MAX_WAITING is refused at once, the queued ones succeed', async () => {
    const db = await open({ maxConnections: 1, maxWaiting: 2, acquireTimeoutMs: 30_000 });
    const holder = sleep(db, 0.5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const queued = [sleep(db, 0), sleep(db, 0)];
    await new Promise((resolve) => setImmediate(resolve));

    const third = await answerOf(sleep(db, 0));

    expect(third).toMatchObject({ status: 503, code: 'SERVICE_OVERLOADED' });
    expect(db.poolStats().overloadedQueueFull).toBe(1);
    expect((await Promise.allSettled([holder, ...queued])).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('still answers SERVICE_UNAVAILABLE, not overload, when the database goes away under a saturated pool', async () => {
    const port = Number(new URL(PG_URL).port || 5432);
    const proxy = await tcpProxy(port);
    try {
      const db = await open({ connectionString: PG_URL.replace(`:${port}/`, `:${proxy.port}/`), maxConnections: 1, connectionTimeoutMs: 1_000, acquireTimeoutMs: 30_000 });
      await sleep(db, 0);
      const holder = answerOf(sleep(db, 5));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waiters = Array.from({ length: 4 }, () => answerOf(sleep(db, 0)));
      await new Promise((resolve) => setImmediate(resolve));
      expect(db.poolStats().waiting).toBe(4);

      proxy.cut();
      const answers = await Promise.all([holder, ...waiters]);

      expect(answers.map((a) => a.code)).toEqual(answers.map(() => 'SERVICE_UNAVAILABLE'));
      expect(answers.every((a) => a.status === 503)).toBe(true);
      proxy.restore();
      expect(await answerOf(sleep(db, 0))).toMatchObject({ status: 200 });
    } finally {
      await proxy.close();
    }
  });

  it('reports a wait that ran out while every new connection failed as the outage', async () => {
    // a listener that accepts and never answers: every connection attempt uses up the connect budget
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const blackHole = createServer((s) => void sockets.push(s)).listen(0, '127.0.0.1');
    await new Promise((resolve) => blackHole.once('listening', resolve));
    try {
      const { port } = blackHole.address() as { port: number };
      const db = await open({ connectionString: `postgres://postgres@127.0.0.1:${port}/test`, maxConnections: 1, connectionTimeoutMs: 400, acquireTimeoutMs: 600 });
      const answers = await Promise.all(Array.from({ length: 4 }, () => answerOf(sleep(db, 0))));

      expect(answers.map((a) => a.code)).toEqual(answers.map(() => 'SERVICE_UNAVAILABLE'));
      expect(db.poolStats().overloadedTimeout).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      blackHole.close();
    }
  });

  it('over HTTP: a request that finds the pool busy past the budget gets the SERVICE_OVERLOADED envelope, then the next one succeeds', async () => {
    const schema = await freshSchema('pool');
    const server = await startTestServer({ DATABASE_URL: schema.url, DATABASE_POOL_MAX: '1', DATABASE_POOL_ACQUIRE_TIMEOUT_MS: '300' });
    try {
      const t = await server.newTenant();
      const headers = { 'x-api-key': t.apiKey, 'x-end-user-id': 'pool-user' };
      expect((await server.call('GET', '/memory/export', { headers })).status).toBe(200);
      const holder = sql`select pg_sleep(2)`.execute(server.app.db.kysely);
      await new Promise((resolve) => setTimeout(resolve, 50));

      const busy = await server.call('GET', '/memory/export', { headers });
      await holder;
      const after = await server.call('GET', '/memory/export', { headers });

      expect(busy.status).toBe(503);
      expect(busy.headers.get('retry-after')).toBe('2');
      expect(busy.body.error).toMatchObject({ code: 'SERVICE_OVERLOADED', retry_after: 2 });
      expect(typeof busy.body.request_id).toBe('string');
      expect(after.status).toBe(200);
    } finally {
      await server.stop();
      await schema.drop();
    }
  });
});
