import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

export interface Lease {
  /** grows by one on every acquisition; writers compare it to reject a holder whose lease expired */
  fencingToken: number;
}

/**
 * Takes the job's lease if nobody holds an unexpired one, in one atomic statement: the insert creates
 * the row the first time, the conditional update takes over a free or expired lease. Two callers racing
 * on PostgreSQL serialise on the row and the loser's WHERE no longer matches, so at most one gets a token.
 */
export async function tryAcquireLease(db: Kysely<Database>, job: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
  const { rows } = await sql<{ fencing_token: number | string }>`
    insert into job_leases as l (job, holder, fencing_token, expires_at, last_started_at)
    values (${job}, ${holder}, 1, now() + make_interval(secs => ${ttlMs / 1000}), now())
    on conflict (job) do update
      set holder = excluded.holder,
          fencing_token = l.fencing_token + 1,
          expires_at = excluded.expires_at,
          last_started_at = excluded.last_started_at
      where l.expires_at is null or l.expires_at <= now()
    returning l.fencing_token`.execute(db);
  const row = rows[0];
  return row ? { fencingToken: Number(row.fencing_token) } : undefined;
}

/** Extends a lease still held under `fencingToken`; false once it expired and may have been taken over. */
export async function renewLease(db: Kysely<Database>, job: string, fencingToken: number, ttlMs: number): Promise<boolean> {
  const result = await db
    .updateTable('job_leases')
    .set({ expires_at: sql`now() + make_interval(secs => ${ttlMs / 1000})` })
    .where('job', '=', job)
    .where('fencing_token', '=', fencingToken)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Frees the lease if it is still ours (same fencing token), so the next run need not wait for expiry. */
export async function releaseLease(db: Kysely<Database>, job: string, fencingToken: number): Promise<boolean> {
  const result = await db
    .updateTable('job_leases')
    .set({ expires_at: null, last_finished_at: sql`now()` })
    .where('job', '=', job)
    .where('fencing_token', '=', fencingToken)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
