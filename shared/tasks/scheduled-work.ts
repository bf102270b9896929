import type { App } from '../app.ts';
import type { Task, TaskFamily } from '../ports/queue.ts';
import { usersWithRecentMemories } from './summarization.ts';

/**
 * The work of the retention and intelligence jobs: they fan out tasks to their
 * families' queues (one per tenant, one per end user to summarise) through the outbox; task ids are
 * derived from the job's period, so a second run in the same period — a retry, a run the scheduler
 * could not stop — adds nothing: the outbox row exists and the workers' ledger has it.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Writes tasks whose ids may already exist (same period) and relays the new ones. */
export async function enqueueOnce(app: Pick<App, 'db' | 'relay'>, tasks: Task[]): Promise<string[]> {
  if (tasks.length === 0) return [];
  const inserted = await app.db.kysely
    .insertInto('outbox')
    .values(tasks.map((t) => ({ task_id: t.id, family: t.family, type: t.type, tenant_id: t.tenantId, payload: JSON.stringify(t.payload), created_at: t.createdAt })))
    .onConflict((oc) => oc.column('task_id').doNothing())
    .returning('task_id')
    .execute();
  const ids = inserted.map((r) => r.task_id);
  if (ids.length) await app.relay.relayNow(ids).catch(() => {}); // the outbox sweep sends what this misses
  return ids;
}

const periodKey = (now: Date, ms: number) => new Date(Math.floor(now.getTime() / ms) * ms).toISOString();
const task = (family: TaskFamily, type: string, id: string, tenantId: string | null, payload: Record<string, unknown>, now: Date): Task => ({ id, family, type, tenantId, payload, createdAt: now.toISOString() });

async function activeTenants(app: Pick<App, 'db'>): Promise<string[]> {
  const rows = await app.db.kysely.selectFrom('tenants').select('id').where('status', '=', 'active').orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** Hourly: one retention `sweep` task per active tenant. */
export async function scheduleRetention(app: Pick<App, 'db' | 'relay' | 'clock'>): Promise<number> {
  const now = app.clock.now();
  const period = periodKey(now, HOUR_MS);
  const tenants = await activeTenants(app);
  return (await enqueueOnce(app, tenants.map((t) => task('retention', 'sweep', `retention:${t}:${period}`, t, { tenantId: t }, now)))).length;
}

/**
 * Daily: one intelligence `reevaluate` task per active tenant, and a summarization `summarize-user`
 * task for every end user who added memories in the last two days (their idle sessions and closed
 * days get summaries).
 */
export async function scheduleIntelligence(app: Pick<App, 'db' | 'relay' | 'clock'>): Promise<number> {
  const now = app.clock.now();
  const period = periodKey(now, DAY_MS);
  const tenants = new Set(await activeTenants(app));
  const tasks = [...tenants].map((t) => task('intelligence', 'reevaluate', `intelligence:${t}:${period}`, t, { tenantId: t }, now));
  for (const u of await usersWithRecentMemories(app.db.kysely, new Date(now.getTime() - 2 * DAY_MS))) {
    if (tenants.has(u.tenantId)) tasks.push(task('summarization', 'summarize-user', `summarize:${u.tenantId}:${u.userId}:${period}`, u.tenantId, { userId: u.userId }, now));
  }
  return (await enqueueOnce(app, tasks)).length;
}
