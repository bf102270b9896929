import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../../db/schema.ts';
import { DatabaseOverloadedError, DatabaseUnavailableError } from '../../errors.ts';
import type { Db } from '../../ports/db.ts';

// int8 columns hold ids and counters far below 2^53; read them as numbers, as PGlite is told to.
pg.types.setTypeParser(20, (v) => Number(v));

export interface DatabaseCredentials {
  user: string;
  password: string;
}

export interface PostgresDbOptions {
  connectionString: string;
  /**
   * Where the user name and password come from when they can change under a running process (a Secrets
   * Manager secret with rotation): read before the first connection, and read again — once per refusal,
   * at most every `credentialsReloadIntervalMs` — when the server refuses the password (SQLSTATE 28P01),
   * then the connection is retried once. They replace any user and password in `connectionString`.
   */
  credentials?: () => Promise<DatabaseCredentials>;
  /** pool size per process; on Lambda keep it at 1-2 and let RDS Proxy pool */
  maxConnections?: number;
  /** budget for opening one new connection: past it the database counts as down (a clean 503) */
  connectionTimeoutMs?: number;
  /** how long a query waits for a pooled connection while all are busy before the overload answer */
  acquireTimeoutMs?: number;
  /** requests already waiting for a connection past which a new one gets the overload answer at once */
  maxWaiting?: number;
  statementTimeoutMs?: number;
  /** try to `create extension vector`; false when the role may not */
  enableVector?: boolean;
  /** the least time between two reads of `credentials` after the first */
  credentialsReloadIntervalMs?: number;
  /** the `pg` client class; tests hand in a subclass to stand in for the server's answers */
  Client?: typeof pg.Client;
}

export interface PostgresPoolStats {
  /** connections open now, idle among them, requests waiting for one */
  total: number;
  idle: number;
  waiting: number;
  /** requests answered 503 SERVICE_OVERLOADED: waited past the acquire budget, or found the wait queue full */
  overloadedTimeout: number;
  overloadedQueueFull: number;
  /** times the credentials were read again after the server refused the password */
  credentialReloads: number;
}

export interface PostgresDb extends Db {
  poolStats(): PostgresPoolStats;
}

const defaults = {
  maxConnections: 10,
  connectionTimeoutMs: 2_000,
  acquireTimeoutMs: 10_000,
  maxWaiting: 1_000,
  statementTimeoutMs: 15_000,
  credentialsReloadIntervalMs: 5_000,
} as const;

/** pg-pool's answer to a checkout that waited `connectionTimeoutMillis` in its queue (a new connection that times out says otherwise) */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';
/** SQLSTATE invalid_password: the server refused the user name or password */
const INVALID_PASSWORD = '28P01';

/**
 * A PostgreSQL server (Aurora, RDS, or the machine's own) through a `pg` pool.
 *
 * Two budgets, two answers. Opening a connection gets `connectionTimeoutMs`: a server that does not
 * answer in time is down, and the request gets the clean 503 `SERVICE_UNAVAILABLE`. Waiting for a pooled
 * connection while all `maxConnections` are busy is backpressure, not an outage: a bounded queue
 * (`maxWaiting`) waits up to `acquireTimeoutMs`, and only past that (or with the queue full) does the
 * request get 503 `SERVICE_OVERLOADED` with `Retry-After`. A wait that ran out while new connections
 * were failing is still reported as the database being down.
 */
export async function openPostgresDb(options: PostgresDbOptions): Promise<PostgresDb> {
  const maxWaiting = options.maxWaiting ?? defaults.maxWaiting;
  const connectTimeoutMs = options.connectionTimeoutMs ?? defaults.connectionTimeoutMs;
  const acquireTimeoutMs = Math.max(options.acquireTimeoutMs ?? defaults.acquireTimeoutMs, 1);
  const reloadIntervalMs = options.credentialsReloadIntervalMs ?? defaults.credentialsReloadIntervalMs;
  const stats = { overloadedTimeout: 0, overloadedQueueFull: 0, credentialReloads: 0 };

  // -- credentials: the current ones, a generation that changes when they are re-read, one read at a time
  let credentials = options.credentials ? await options.credentials() : undefined;
  let generation = 0;
  let lastReloadAt = Number.NEGATIVE_INFINITY;
  let reloading: Promise<void> | undefined;
  const connectionString = () => (credentials ? withCredentials(options.connectionString, credentials) : options.connectionString);

  /** Re-reads the credentials unless someone already did since `seen`; false when nothing new can be had now. */
  async function reloadCredentials(seen: number): Promise<boolean> {
    if (generation !== seen) return true;
    if (!reloading) {
      if (Date.now() - lastReloadAt < reloadIntervalMs) return false;
      lastReloadAt = Date.now();
      reloading = (async () => {
        try {
          credentials = await options.credentials!();
          generation += 1;
          stats.credentialReloads += 1;
        } finally {
          reloading = undefined;
        }
      })();
    }
    await reloading;
    return true;
  }

  const BaseClient = options.Client ?? pg.Client;
  // Every new connection reads the current credentials and gets the connect budget; the pool's own
  // `connectionTimeoutMillis` is then the wait for a pooled connection.
  class ConfiguredClient extends BaseClient {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionString: connectionString(), connectionTimeoutMillis: connectTimeoutMs });
      // A connection lost while checked out emits 'error' on the client as well as failing its query; the
      // pool listens only while the client is idle, and an unheard 'error' would crash the process.
      this.on('error', () => {});
    }
  }
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    Client: ConfiguredClient as unknown as new () => pg.ClientBase,
    max: options.maxConnections ?? defaults.maxConnections,
    connectionTimeoutMillis: acquireTimeoutMs,
    statement_timeout: options.statementTimeoutMs ?? defaults.statementTimeoutMs,
    idleTimeoutMillis: 30000,
  });
  // A dead server emits errors on idle clients; without a listener they would crash the process.
  pool.on('error', () => {});

  // when the last new connection failed and none has succeeded since, waiting is a symptom of the outage
  let connectFailedLast = false;

  async function checkout(retried = false): Promise<pg.PoolClient> {
    if (pool.waitingCount >= maxWaiting) {
      stats.overloadedQueueFull += 1;
      throw new DatabaseOverloadedError(`${pool.waitingCount} requests are already waiting for a database connection`);
    }
    const seen = generation;
    try {
      const client = await pool.connect();
      connectFailedLast = false;
      return client;
    } catch (error) {
      if (error instanceof Error && error.message === POOL_WAIT_TIMEOUT) {
        if (connectFailedLast) throw new DatabaseUnavailableError(error);
        stats.overloadedTimeout += 1;
        throw new DatabaseOverloadedError(`no database connection became free within ${acquireTimeoutMs} ms`, error);
      }
      connectFailedLast = true;
      // No connection could be opened (refused, reset, timed out, shut down, refused login): the outage answer.
      if ((error as { code?: string }).code !== INVALID_PASSWORD || !options.credentials) throw new DatabaseUnavailableError(error);
      // A rotated secret: read it again (once for every request refused meanwhile) and retry once.
      if (retried) throw new DatabaseUnavailableError(error);
      let fresh: boolean;
      try {
        fresh = await reloadCredentials(seen);
      } catch (readError) {
        throw new DatabaseUnavailableError(new AggregateError([error, readError], 'password refused; re-reading the credentials failed'));
      }
      if (!fresh) throw new DatabaseUnavailableError(error);
      return checkout(true);
    }
  }

  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: { connect: () => checkout(), end: () => pool.end() } }) });
  let hasVector = false;
  if (options.enableVector !== false) {
    try {
      await sql`create extension if not exists vector`.execute(kysely);
      hasVector = true;
    } catch {
      hasVector = false;
    }
  }
  return {
    kind: 'postgres',
    kysely,
    hasVector,
    async health() {
      await sql`select 1`.execute(kysely);
      return true;
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, ...stats }),
    async close() {
      await kysely.destroy();
    },
  };
}

/** `url` with its user name and password replaced. */
function withCredentials(url: string, credentials: DatabaseCredentials): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(credentials.user);
  parsed.password = encodeURIComponent(credentials.password);
  return parsed.toString();
}
