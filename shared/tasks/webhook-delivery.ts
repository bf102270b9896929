import type { Logger } from '@aws-lambda-powertools/logger';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { signPayload } from '../crypto/payload-signature.ts';
import { SsrfBlockedError, type OutboundHttp } from '../net/ssrf-guard.ts';
import { enqueueTasks, type OutboxRelay } from '../outbox/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { Db } from '../ports/db.ts';
import type { Queue, Task } from '../ports/queue.ts';
import { writeAudit } from '../services/audit.ts';
import { AUTO_DISABLE_AFTER_FAILURES, DEFAULT_MAX_RETRIES, DELIVERY_TIMEOUT_MS, retryDelayMs } from '../services/webhook-events.ts';
import { deliverTask, eventBody, eventIdFor, newDeliveryId, type WebhookService } from '../services/webhook-service.ts';
import type { TaskHandler } from './worker-runtime.ts';

/** What the webhook worker needs; the App satisfies it. */
export interface WebhookDeliveryDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  relay: OutboxRelay;
  outbound: OutboundHttp;
  webhooks: WebhookService;
  /** where a delivery deferred by the per-endpoint cap goes back to, with a delay */
  queue: Queue;
  config: { WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: number };
}

export interface FanoutPayload {
  event: string;
  projectId: string | null;
  endUserId: string | null;
  data: Record<string, unknown>;
}

export interface DeliverPayload {
  deliveryId: string;
  attempt: number;
  /** times this attempt was put back because its endpoint was at its concurrency cap */
  deferrals?: number;
}

/**
 * How long an in-flight slot is held at most: the request timeout plus room to record the attempt.
 * A worker that dies mid-request frees its slot when this runs out.
 */
export const INFLIGHT_LEASE_MS = DELIVERY_TIMEOUT_MS + 20_000;

/** Short waits for a slot before an attempt is deferred (about 150 ms in all). */
const SLOT_WAITS_MS = [10, 20, 40, 80];

/** Delay before a deferred attempt is tried again: 1, 2, 4, 8, then 10 s, ±20 % (at least 1 s). */
export function deferralDelaySeconds(deferrals: number, random: () => number = Math.random): number {
  const base = Math.min(10, 2 ** Math.max(0, deferrals - 1));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}

/** How one attempt ended and what happens next. */
type Outcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; at: Date }
  | { kind: 'dead'; why: string };

const ERROR_CHARS = 500;

/** Sends the relay the tasks a handler enqueued, after its transaction committed; the outbox sweep covers a failure. */
async function relayAfterCommit(deps: WebhookDeliveryDeps, taskIds: string[]): Promise<void> {
  if (taskIds.length === 0) return;
  await deps.relay.relayNow(taskIds).catch((error) => deps.logger.warn('webhook relay failed; the outbox sweep will send', { error: (error as Error).message }));
}

/**
 * The webhook-delivery family:
 * - `fanout` turns one event into one delivery row and one `deliver` task per active endpoint of the
 *   tenant that subscribes to it (and matches its project), in the ledger transaction;
 * - `deliver` makes one signed HTTP attempt through the SSRF guard and records it; a failure schedules
 *   the next attempt as `next_attempt_at` on the row (SQS cannot delay past 15 min), which the
 *   `webhook-retry-sweep` job turns back into a `deliver` task when due.
 */
export function webhookDeliveryHandlers(deps: WebhookDeliveryDeps): Record<string, TaskHandler> {
  const fanout: TaskHandler<FanoutPayload> = async (task, ctx) => {
    const tenantId = task.tenantId;
    if (!tenantId) return;
    const { event, projectId, endUserId } = task.payload;
    const endpoints = await ctx.db.kysely
      .selectFrom('webhooks')
      .select(['id', 'project_id'])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'active')
      .where(sql<boolean>`events @> ${JSON.stringify([event])}::jsonb`)
      .where((eb) => eb.or([eb('project_id', 'is', null), ...(projectId ? [eb('project_id', '=', projectId)] : [])]))
      .execute();
    if (endpoints.length === 0) return;

    const eventId = eventIdFor(task.id);
    const now = deps.clock.now();
    const data = endUserId ? { ...task.payload.data, end_user_id: endUserId } : task.payload.data;
    const body = eventBody({ eventId, event, createdAt: task.createdAt, tenantId, projectId, data });
    const taskIds = await ctx.transaction(async (trx) => {
      const created = await trx
        .insertInto('webhook_deliveries')
        .values(endpoints.map((e) => ({ id: newDeliveryId(), tenant_id: tenantId, webhook_id: e.id, event_id: eventId, event, body, created_at: now, updated_at: now })))
        .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
        .returning('id')
        .execute();
      return enqueueTasks(trx, created.map((d) => deliverTask(tenantId, d.id, 1, now)));
    });
    await relayAfterCommit(deps, taskIds);
  };

  const deliver: TaskHandler<DeliverPayload> = async (task, ctx) => {
    const tenantId = task.tenantId;
    if (!tenantId) return;
    const { deliveryId, attempt } = task.payload;
    const delivery = await ctx.db.kysely.selectFrom('webhook_deliveries').selectAll().where('tenant_id', '=', tenantId).where('id', '=', deliveryId).executeTakeFirst();
    // Gone with its endpoint, or an older attempt's late copy: nothing to send.
    if (!delivery || delivery.status !== 'pending' || delivery.attempts + 1 !== attempt) return;
    const target = await deps.webhooks.target(ctx.db.kysely, tenantId, delivery.webhook_id);
    if (!target) return;
    const log = { tenantId, deliveryId, webhookId: delivery.webhook_id, attempt, event: delivery.event };

    if (target.row.status !== 'active') {
      // A disabled endpoint gets nothing more; the delivery stays replayable once it is enabled again.
      await ctx.transaction((trx) => settle(trx, { ...log, at: deps.clock.now(), outcome: { kind: 'dead', why: 'endpoint disabled' }, attemptRow: null, cycleAttempts: delivery.cycle_attempts }));
      return;
    }

    // Per-endpoint cap: at most N requests in flight to this endpoint across every worker. Without a
    // slot the attempt is put back on the queue with a delay: deferred, not failed, and it never
    // holds a worker while it waits, so the endpoint's backlog cannot starve other endpoints.
    // A fast endpoint frees its slots within milliseconds, so a few short waits come first; only an
    // endpoint still busy after them (a slow one) gets the attempt deferred.
    let slotAt = deps.clock.now();
    let slot = false;
    for (const pauseMs of [...SLOT_WAITS_MS, undefined]) {
      slotAt = deps.clock.now();
      slot = await acquireInflightSlot(ctx.db.kysely, {
        tenantId, webhookId: delivery.webhook_id, deliveryId, max: deps.config.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT,
        now: slotAt, until: new Date(slotAt.getTime() + INFLIGHT_LEASE_MS),
      });
      if (slot || pauseMs === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    if (!slot) {
      const deferrals = (task.payload.deferrals ?? 0) + 1;
      const delaySeconds = deferralDelaySeconds(deferrals);
      const next: Task = {
        ...deliverTask(tenantId, deliveryId, attempt, slotAt),
        id: `webhook-deliver:${deliveryId}:${attempt}:defer-${deferrals}`,
        payload: { deliveryId, attempt, deferrals },
      };
      // If this send fails the task fails and the queue redelivers it: the delivery is never lost.
      await deps.queue.send([next], { delaySeconds });
      ctx.logger.info('webhook attempt deferred: endpoint at its concurrency cap', { ...log, deferrals, delaySeconds });
      return;
    }

    const timestamp = Math.floor(deps.clock.now().getTime() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'MemorySync-Webhooks/1.0',
      'x-memorysync-event': delivery.event,
      'x-memorysync-delivery': delivery.id,
      'x-memorysync-timestamp': String(timestamp),
      'x-memorysync-signature': signPayload(target.secret, timestamp, delivery.body),
      ...(target.authHeader ? { [target.authHeader.name]: target.authHeader.value } : {}),
    };

    let status: number | null = null;
    let error: string | null = null;
    let latencyMs = 0;
    const started = performance.now();
    try {
      const res = await deps.outbound.send(target.row.url, { headers, body: delivery.body, timeoutMs: DELIVERY_TIMEOUT_MS });
      status = res.status;
      latencyMs = res.latencyMs;
      if (status >= 300 && status < 400) error = `redirect (${status}) not followed`;
      else if (status >= 400) error = `HTTP ${status}`;
    } catch (e) {
      latencyMs = Math.round(performance.now() - started);
      error = e instanceof SsrfBlockedError ? `blocked by the SSRF guard: ${e.reason}` : `request failed: ${(e as Error).message}`;
    }

    const now = deps.clock.now();
    const cycleAttempts = delivery.cycle_attempts + 1;
    const maxRetries = target.row.retry_config.max_attempts ?? DEFAULT_MAX_RETRIES;
    const outcome: Outcome = status !== null && status >= 200 && status < 300 ? { kind: 'delivered' }
      : status === 410 ? { kind: 'dead', why: 'endpoint gone (410)' }
      : cycleAttempts <= maxRetries ? { kind: 'retry', at: new Date(now.getTime() + retryDelayMs(cycleAttempts, target.row.retry_config.backoff_seconds)) }
      : { kind: 'dead', why: 'retries exhausted' };

    await ctx.transaction((trx) => settle(trx, {
      ...log, at: now, outcome, cycleAttempts,
      attemptRow: { status_code: status, latency_ms: latencyMs, success: outcome.kind === 'delivered', error: error?.slice(0, ERROR_CHARS) ?? null },
    }));
    ctx.logger.info('webhook attempt', { ...log, statusCode: status, latencyMs, outcome: outcome.kind });
  };

  return { fanout: fanout as TaskHandler, deliver: deliver as TaskHandler };
}

/**
 * Records one attempt and moves the delivery and its endpoint on, in the ledger transaction: the
 * delivery row, the attempt row, the endpoint's consecutive failure count (disabling it at the
 * threshold, with an audit row), all or nothing.
 */
async function settle(trx: Kysely<Database>, s: {
  tenantId: string; deliveryId: string; webhookId: string; attempt: number; at: Date; outcome: Outcome; cycleAttempts: number;
  attemptRow: { status_code: number | null; latency_ms: number; success: boolean; error: string | null } | null;
}): Promise<void> {
  const { outcome, at } = s;
  // the attempt is over: its in-flight slot (if it held one) is free again
  if (s.attemptRow) await trx.deleteFrom('webhook_inflight').where('webhook_id', '=', s.webhookId).where('delivery_id', '=', s.deliveryId).execute();
  const errorText = s.attemptRow?.error ?? (outcome.kind === 'dead' ? outcome.why : null);
  const updated = await trx
    .updateTable('webhook_deliveries')
    .set({
      attempts: s.attemptRow ? s.attempt : s.attempt - 1,
      cycle_attempts: s.cycleAttempts,
      status: outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'retry' ? 'retrying' : 'dead_lettered',
      next_attempt_at: outcome.kind === 'retry' ? outcome.at : null,
      last_status_code: s.attemptRow?.status_code ?? null,
      last_error: outcome.kind === 'dead' && s.attemptRow?.error ? `${outcome.why}: ${s.attemptRow.error}`.slice(0, ERROR_CHARS) : errorText,
      delivered_at: outcome.kind === 'delivered' ? at : null,
      dead_lettered_at: outcome.kind === 'dead' ? at : null,
      updated_at: at,
    })
    .where('tenant_id', '=', s.tenantId)
    .where('id', '=', s.deliveryId)
    .where('status', '=', 'pending')
    .where('attempts', '=', s.attempt - 1)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return;
  if (s.attemptRow) {
    await trx.insertInto('webhook_delivery_attempts').values({ tenant_id: s.tenantId, delivery_id: s.deliveryId, attempt: s.attempt, ...s.attemptRow, created_at: at }).execute();
  }
  if (outcome.kind === 'delivered') {
    await trx.updateTable('webhooks').set({ consecutive_failures: 0 }).where('tenant_id', '=', s.tenantId).where('id', '=', s.webhookId).where('consecutive_failures', '>', 0).execute();
  } else if (outcome.kind === 'dead' && s.attemptRow) {
    const hook = await trx
      .updateTable('webhooks')
      .set((eb) => ({ consecutive_failures: eb('consecutive_failures', '+', 1) }))
      .where('tenant_id', '=', s.tenantId)
      .where('id', '=', s.webhookId)
      .returning(['consecutive_failures', 'status'])
      .executeTakeFirst();
    if (hook && hook.status === 'active' && hook.consecutive_failures >= AUTO_DISABLE_AFTER_FAILURES) {
      await trx.updateTable('webhooks').set({ status: 'disabled', disabled_reason: 'consecutive_failures', disabled_at: at, updated_at: at })
        .where('tenant_id', '=', s.tenantId).where('id', '=', s.webhookId).execute();
      await writeAudit(trx, {
        tenantId: s.tenantId, principal: 'system:webhook-delivery', eventType: 'webhook.auto_disabled', category: 'org', resourceType: 'webhook',
        resourceId: s.webhookId, action: 'disable', status: 'success', payload: { consecutive_failures: hook.consecutive_failures },
      });
    }
  }
}

/**
 * Takes one of the endpoint's `max` in-flight slots for this delivery, or answers false when all are
 * held. The endpoint row is locked first (FOR UPDATE, in its own statement) so concurrent workers
 * take slots one after another and each count sees the others' committed rows; slots whose lease
 * expired (a crashed worker) do not count and are removed. A delivery that already holds a slot
 * (a redelivered task) renews it.
 */
export async function acquireInflightSlot(db: Kysely<Database>, s: {
  tenantId: string; webhookId: string; deliveryId: string; max: number; now: Date; until: Date;
}): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const hook = await trx.selectFrom('webhooks').select('id').where('tenant_id', '=', s.tenantId).where('id', '=', s.webhookId).forUpdate().executeTakeFirst();
    if (!hook) return false;
    const { rows } = await sql<{ delivery_id: string }>`
      with expired as (
        delete from webhook_inflight where webhook_id = ${s.webhookId} and delivery_id <> ${s.deliveryId} and expires_at <= ${s.now}
      ), busy as (
        select count(*)::int as n from webhook_inflight
        where webhook_id = ${s.webhookId} and delivery_id <> ${s.deliveryId} and expires_at > ${s.now}
      )
      insert into webhook_inflight (webhook_id, delivery_id, tenant_id, expires_at)
      select ${s.webhookId}, ${s.deliveryId}, ${s.tenantId}, ${s.until} from busy where busy.n < ${s.max}
      on conflict (webhook_id, delivery_id) do update set expires_at = excluded.expires_at
      returning delivery_id`.execute(trx);
    return rows.length > 0;
  });
}

/**
 * The `webhook-retry-sweep` job: deliveries whose `next_attempt_at` has come get their next `deliver`
 * task. Rows are claimed with SKIP LOCKED and flipped to `pending` in the same transaction that writes
 * the tasks to the outbox, so each retry is queued once.
 */
export async function sweepWebhookRetries(deps: Pick<WebhookDeliveryDeps, 'db' | 'clock' | 'relay' | 'logger'>, options: { limit?: number } = {}): Promise<{ queued: number }> {
  const limit = options.limit ?? 500;
  let queued = 0;
  for (;;) {
    const now = deps.clock.now();
    const taskIds = await deps.db.kysely.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('webhook_deliveries')
        .select(['id', 'tenant_id', 'attempts'])
        .where('status', '=', 'retrying')
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(limit)
        .forUpdate()
        .skipLocked()
        .execute();
      if (due.length === 0) return [];
      await trx.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: null, updated_at: now }).where('id', 'in', due.map((d) => d.id)).execute();
      return enqueueTasks(trx, due.map((d) => deliverTask(d.tenant_id, d.id, d.attempts + 1, now)));
    });
    queued += taskIds.length;
    if (taskIds.length) await deps.relay.relayNow(taskIds).catch((error) => deps.logger.warn('webhook retry relay failed; the outbox sweep will send', { error: (error as Error).message }));
    if (taskIds.length < limit) return { queued };
  }
}
