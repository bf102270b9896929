import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresDb, type DatabaseCredentials, type PostgresDb } from '#shared/adapters/postgres/postgres-db.ts';
import { toAppError } from '#shared/http/middleware/error-handler.ts';
import { PG_URL } from '../support/pg-schema.ts';

/**
 * Secret rotation: the adapter re-reads the database credentials once when the server refuses the
 * password (SQLSTATE 28P01) and retries, so a rotated Secrets Manager secret needs no cold start.
 *
 * The machine's PostgreSQL trusts every local login, so it never refuses a password. The refusal is
 * simulated at the pool boundary: a `pg.Client` subclass answers a connection attempt whose password is
 * not the server's current one with the DatabaseError PostgreSQL sends (FATAL, 28P01); a connection with
 * the right password really connects to the machine's PostgreSQL.
 */
describe('PostgreSQL adapter: credentials re-read on 28P01', { timeout: 60_000 }, () => {
  const server = { password: 'v1', refused: 0 };
  class PasswordCheckingClient extends pg.Client {
    override connect(callback?: (...args: any[]) => void): any {
      const password = (this as unknown as { connectionParameters: { password?: string } }).connectionParameters.password;
      if (password !== server.password) {
        server.refused += 1;
        const refusal = new pg.DatabaseError(`password authentication failed for user "${this.user}"`, 0, 'error');
        Object.assign(refusal, { severity: 'FATAL', code: '28P01' });
        if (callback) {
          process.nextTick(() => callback(refusal));
          return undefined;
        }
        return Promise.reject(refusal);
      }
      return callback ? super.connect(callback) : super.connect();
    }
  }

  const opened: PostgresDb[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close().catch(() => undefined)));
  });

  /** a Secrets Manager stand-in: the stored secret, how often it was read, and an optional outage */
  function secretStore(password: string) {
    const store = { password, reads: 0, down: false };
    const read = async (): Promise<DatabaseCredentials> => {
      store.reads += 1;
      if (store.down) throw new Error('Secrets Manager unreachable');
      return { user: 'postgres', password: store.password };
    };
    return { store, read };
  }

  async function open(read: () => Promise<DatabaseCredentials>, reloadIntervalMs = 0) {
    const db = await openPostgresDb({ connectionString: PG_URL, credentials: read, Client: PasswordCheckingClient, maxConnections: 4, enableVector: false, credentialsReloadIntervalMs: reloadIntervalMs });
    opened.push(db);
    return db;
  }
  const answerOf = async (db: PostgresDb) => {
    try {
      const r = await sql<{ one: number }>`select 1 as one`.execute(db.kysely);
      return { status: 200, code: String(r.rows[0]?.one) };
    } catch (error) {
      const e = toAppError(error);
      return { status: e.status, code: e.code };
    }
  };

  it('a secret rotated after start: the first refused connections re-read it once and every query succeeds', async () => {
    server.password = 'v1';
    server.refused = 0;
    const { store, read } = secretStore('v1');
    const db = await open(read); // reads v1 before the first connection
    store.password = 'v2'; // rotation: the secret and the server change together
    server.password = 'v2';

    const answers = await Promise.all(Array.from({ length: 4 }, () => answerOf(db)));

    expect(answers).toEqual(answers.map(() => ({ status: 200, code: '1' })));
    expect(server.refused).toBeGreaterThanOrEqual(1);
    expect(store.reads).toBe(2); // at open, and once for every refusal of the burst
    expect(db.poolStats().credentialReloads).toBe(1);
  });

  it('a password the secret does not fix: one re-read, one retry, then the clean 503; no re-read storm within the interval', async () => {
    server.password = 'the-server-moved-on';
    server.refused = 0;
    const { store, read } = secretStore('stale');
    const db = await open(read, 60_000);

    const burst = await Promise.all(Array.from({ length: 3 }, () => answerOf(db)));
    const later = await answerOf(db);

    expect(burst).toEqual(burst.map(() => ({ status: 503, code: 'SERVICE_UNAVAILABLE' })));
    expect(later).toEqual({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(store.reads).toBe(2);
  });

  it('a secret store that cannot be read answers the clean 503, and a later rotation still recovers', async () => {
    server.password = 'v1';
    const { store, read } = secretStore('v1');
    const db = await open(read);
    server.password = 'v2';
    store.down = true;

    expect(await answerOf(db)).toEqual({ status: 503, code: 'SERVICE_UNAVAILABLE' });

    store.down = false;
    store.password = 'v2';
    expect(await answerOf(db)).toEqual({ status: 200, code: '1' });
  });

  it('without a credentials source a refused password is the outage answer at once, with nothing re-read', async () => {
    server.password = 'other';
    const db = await openPostgresDb({ connectionString: PG_URL.replace('postgres@', 'postgres:wrong@'), Client: PasswordCheckingClient, enableVector: false });
    opened.push(db);

    expect(await answerOf(db)).toEqual({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(db.poolStats().credentialReloads).toBe(0);
  });
});
