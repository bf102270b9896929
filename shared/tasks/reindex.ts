import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import type { VectorStore } from '../ports/vector-store.ts';
import { EMBEDDABLE_COLUMNS, type ComputedEmbeddings, type EmbeddableRow, type MemoryService } from '../services/memory-service.ts';
import type { TaskHandler } from './worker-runtime.ts';

/** Which memories a run rebuilds; empty = every tenant. */
export interface ReindexScope {
  tenantId?: string;
  projectId?: string;
  /** users.id of one end user */
  userId?: number;
}

export interface ReindexProgress {
  runId: number;
  done: number;
  total: number;
  batches: number;
}

export interface ReindexOptions {
  /** memories per batch (one database read, one embedder call, one vector upsert, one status update, one cursor write) */
  batchSize?: number;
  /** continue the latest unfinished run of the same scope after its cursor instead of starting over */
  resume?: boolean;
  /** called after every committed batch; throwing from it interrupts the run (the cursor is kept) */
  onProgress?: (progress: ReindexProgress) => void;
}

export interface ReindexDeps {
  db: Kysely<Database>;
  /** decrypt + embed a batch (CPU, worker threads), then write its vectors and mark its rows ready (I/O) */
  memories: Pick<MemoryService, 'computeEmbeddings' | 'writeEmbeddings'>;
  embedder: Pick<Embedder, 'model' | 'warmBulk'>;
  clock: Clock;
}

export interface ReindexResult {
  run_id: number;
  resumed: boolean;
  /** memories embedded by this invocation */
  reindexed: number;
  /** memories in scope, of the whole run */
  total: number;
  batches: number;
}

export const DEFAULT_REINDEX_BATCH = 256;

/**
 * Rebuilds vectors of a user, a project, a tenant or everything from `memories.text_ciphertext`
 * (the vector index is derived data). Memories are taken in id order (keyset pagination), in
 * batches; after each batch the run's cursor (the last id done) is committed in `reindex_runs`, so an interrupted run — crash,
 * Ctrl-C, a throwing progress callback — continues with `resume` after the last committed batch and
 * never redoes one. Every row except purged ones is embedded (archived and soft-deleted memories keep
 * their vectors, filtered out by retention status at query time).
 */
export async function reindex(deps: ReindexDeps, scope: ReindexScope, options: ReindexOptions = {}): Promise<ReindexResult> {
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_REINDEX_BATCH);
  const { db, clock } = deps;
  const inScope = <Q extends { where: (...args: any[]) => any }>(q: Q): Q => {
    let out: any = q.where('retention_status', '<>', 'purged');
    if (scope.tenantId) out = out.where('tenant_id', '=', scope.tenantId);
    if (scope.projectId) out = out.where('project_id', '=', scope.projectId);
    if (scope.userId !== undefined) out = out.where('user_id', '=', scope.userId);
    return out as Q;
  };

  let run = options.resume ? await latestUnfinishedRun(db, scope) : undefined;
  const resumed = !!run;
  if (!run) {
    const counted = await inScope(db.selectFrom('memories').select((eb) => eb.fn.countAll<number>().as('n'))).executeTakeFirst();
    const now = clock.now();
    // A fresh run supersedes unfinished ones of the same scope: they can no longer be resumed.
    await sameScope(db.updateTable('reindex_runs').set({ status: 'superseded', updated_at: now }).where('status', 'in', ['running', 'interrupted']), scope).execute();
    run = await db
      .insertInto('reindex_runs')
      .values({ tenant_id: scope.tenantId ?? null, project_id: scope.projectId ?? null, user_id: scope.userId ?? null, status: 'running', cursor: 0, total: Number(counted?.n ?? 0), embedding_model: deps.embedder.model, started_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
  } else {
    await db.updateTable('reindex_runs').set({ status: 'running', last_error: null, updated_at: clock.now() }).where('id', '=', run.id).execute();
  }

  const runId = Number(run.id);
  let cursor = Number(run.cursor);
  let done = run.done;
  let batches = run.batches;
  let reindexed = 0;
  const total = run.total;

  // Two-stage pipeline: while batch N is written and its cursor committed, batch N+1 is read,
  // decrypted and embedded (on the embedder's worker threads when it has them). Only the write stage
  // moves the cursor, so an interruption loses at most the one batch computed ahead, never a write.
  type Ahead = { rows: EmbeddableRow[]; computed: Promise<ComputedEmbeddings> };
  const readAfter = (after: number) =>
    inScope(db.selectFrom('memories').select(EMBEDDABLE_COLUMNS).where('id', '>', after)).orderBy('id').limit(batchSize).execute() as Promise<EmbeddableRow[]>;
  const prepare = (after: number): Promise<Ahead> => {
    const ahead = readAfter(after).then((rows) => ({ rows, computed: deps.memories.computeEmbeddings(rows) }));
    // a batch computed ahead of an interruption is dropped: its rejection must not go unhandled
    ahead.then((a) => a.computed.catch(() => undefined), () => undefined);
    return ahead;
  };
  try {
    // workers that are not running yet are started without waiting: batches embed on this thread until then
    deps.embedder.warmBulk?.().catch(() => undefined);
    let next = prepare(cursor);
    for (;;) {
      const { rows, computed } = await next;
      if (rows.length === 0) break;
      const last = Number(rows[rows.length - 1].id);
      next = prepare(last);
      await deps.memories.writeEmbeddings(await computed);
      cursor = last;
      done += rows.length;
      reindexed += rows.length;
      batches += 1;
      await db.updateTable('reindex_runs').set({ cursor, done, batches, updated_at: clock.now() }).where('id', '=', runId).execute();
      options.onProgress?.({ runId, done: Math.min(done, Math.max(total, done)), total: Math.max(total, done), batches });
    }
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    await db.updateTable('reindex_runs').set({ status: 'interrupted', last_error: message.slice(0, 500), updated_at: clock.now() }).where('id', '=', runId).execute();
    throw error;
  }
  await db.updateTable('reindex_runs').set({ status: 'done', finished_at: clock.now(), updated_at: clock.now() }).where('id', '=', runId).execute();
  return { run_id: runId, resumed, reindexed, total: Math.max(total, done), batches };
}

function sameScope<Q extends { where: (...args: any[]) => any }>(q: Q, scope: ReindexScope): Q {
  let out: any = q;
  out = scope.tenantId ? out.where('tenant_id', '=', scope.tenantId) : out.where('tenant_id', 'is', null);
  out = scope.projectId ? out.where('project_id', '=', scope.projectId) : out.where('project_id', 'is', null);
  out = scope.userId !== undefined ? out.where('user_id', '=', scope.userId) : out.where('user_id', 'is', null);
  return out as Q;
}

async function latestUnfinishedRun(db: Kysely<Database>, scope: ReindexScope) {
  return sameScope(db.selectFrom('reindex_runs').selectAll().where('status', 'in', ['running', 'interrupted']), scope).orderBy('id', 'desc').limit(1).executeTakeFirst();
}

/** The unfinished runs an operator can resume, newest first. */
export async function unfinishedReindexRuns(db: Kysely<Database>) {
  return db.selectFrom('reindex_runs').selectAll().where('status', 'in', ['running', 'interrupted']).orderBy('id', 'desc').execute();
}

/** Tables of the vector stores that live in the database (pg-array, pgvector). */
const VECTOR_TABLES = ['memory_vectors_array', 'memory_vectors'];

/**
 * `--rebuild`: drops the database-resident vector tables so the next `VectorStore.open(dimension)`
 * recreates them for the embedder's (new) dimension. Run before the app opens its vector store: with
 * a changed dimension that open refuses the old table. OpenSearch indexes are not dropped here.
 */
export async function dropVectorTables(db: Kysely<any>): Promise<string[]> {
  const dropped: string[] = [];
  for (const table of VECTOR_TABLES) {
    const exists = await sql<{ t: string | null }>`select to_regclass(${table})::text as t`.execute(db);
    if (!exists.rows[0]?.t) continue;
    await sql`drop table ${sql.table(table)}`.execute(db);
    dropped.push(table);
  }
  return dropped;
}

/** Drops and reopens the store (pg-array / pgvector) for `dimension`, e.g. in a running app. */
export async function rebuildVectorIndex(db: Kysely<any>, vectors: VectorStore, dimension: number): Promise<string[]> {
  if (vectors.kind !== 'pg-array' && vectors.kind !== 'pgvector') {
    throw new Error(`--rebuild drops database vector tables; the ${vectors.kind} store's indexes must be deleted with its own tooling`);
  }
  const dropped = await dropVectorTables(db);
  await vectors.open(dimension);
  return dropped;
}

interface ReindexPayload {
  tenantId?: string;
  projectId?: string;
  userId?: number;
  batchSize?: number;
}

/**
 * The embedding family's `reindex` task (queued by POST /admin/reindex): resumes an interrupted run
 * of the same scope, so a redelivered task continues where the failed attempt stopped.
 */
export function reindexTaskHandler(deps: ReindexDeps): TaskHandler<ReindexPayload> {
  return async (task, ctx) => {
    const result = await reindex(deps, { tenantId: task.payload.tenantId, projectId: task.payload.projectId, userId: task.payload.userId }, { resume: true, batchSize: task.payload.batchSize });
    ctx.logger.info('reindex finished', { runId: result.run_id, reindexed: result.reindexed, total: result.total, resumed: result.resumed });
  };
}
