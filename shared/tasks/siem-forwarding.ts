import type { Logger } from '@aws-lambda-powertools/logger';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AuditLogsTable, Database, SiemForwardersTable } from '../db/schema.ts';
import { signPayload } from '../crypto/payload-signature.ts';
import { SsrfBlockedError, type OutboundHttp } from '../net/ssrf-guard.ts';
import { enqueueTasks, type OutboxRelay } from '../outbox/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { Db } from '../ports/db.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { Task } from '../ports/queue.ts';
import type { SiemService } from '../services/siem-service.ts';
import type { TaskHandler } from './worker-runtime.ts';

/** What SIEM forwarding needs; the App satisfies it. */
export interface SiemForwardingDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  relay: OutboxRelay;
  outbound: OutboundHttp;
  objects: ObjectStore;
  siem: SiemService;
}

/** Audit rows per batch (one HTTP request to the SIEM). */
export const SIEM_BATCH_SIZE = 500;
/**
 * Deliveries of a 'forward' task before its batch becomes a dead letter in the object store. Equal to
 * the queues' maxReceiveCount (local queue and CDK default 5), so the last try still runs in the worker.
 */
export const SIEM_FORWARD_MAX_ATTEMPTS = 5;
/** A batch queued this long ago without an outcome (its task was lost) is queued again. */
const STALE_BATCH_MS = 60 * 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
export const DEAD_LETTER_PREFIX = 'siem-dead-letters';

type ForwarderRow = Selectable<SiemForwardersTable>;
type AuditRow = Selectable<AuditLogsTable>;

interface ForwardPayload {
  forwarderId: string;
  batchId: string;
  /** exclusive lower bound: the forwarder's cursor when the batch was cut */
  afterId: number;
  /** inclusive upper bound */
  throughId: number;
}

/** A batch that exhausted its retries, as stored in the object store. */
export interface SiemDeadLetter {
  batch_id: string;
  tenant_id: string;
  forwarder_id: string;
  type: string;
  after_id: number;
  through_id: number;
  attempts: number;
  last_error: string;
  dead_lettered_at: string;
  events: SiemEvent[];
}

/** The wire form of one audit row, the same for every target. */
export type SiemEvent = ReturnType<typeof toSiemEvent>;

export function toSiemEvent(row: AuditRow) {
  return {
    id: String(row.id), tenant_id: row.tenant_id, user_id: row.user_id, principal: row.principal, event_type: row.event_type,
    category: row.category, resource_type: row.resource_type, resource_id: row.resource_id, action: row.action, status: row.status,
    status_code: row.status_code, ip_address: row.ip_address, user_agent: row.user_agent, request_id: row.request_id,
    payload: typeof row.payload_json === 'string' ? JSON.parse(row.payload_json) : row.payload_json,
    created_at: new Date(row.created_at).toISOString(),
  };
}

/** The request a target type expects for a batch (Splunk HEC, Datadog logs intake, or signed JSON). */
export function formatSiemBatch(type: string, token: string, batchId: string, events: SiemEvent[], now: Date): { headers: Record<string, string>; body: string } {
  const common = { 'user-agent': 'MemorySync-SIEM/1.0', 'x-memorysync-batch-id': batchId };
  switch (type) {
    case 'splunk_hec':
      return {
        headers: { ...common, 'content-type': 'application/json', authorization: `Splunk ${token}` },
        body: events.map((e) => JSON.stringify({ time: Date.parse(e.created_at) / 1000, sourcetype: 'memorysync:audit', source: 'memorysync', event: e, fields: { batch_id: batchId } })).join('\n'),
      };
    case 'datadog':
      return {
        headers: { ...common, 'content-type': 'application/json', 'dd-api-key': token },
        body: JSON.stringify(events.map((e) => ({
          ddsource: 'memorysync', service: 'memorysync', ddtags: `tenant_id:${e.tenant_id},category:${e.category},batch_id:${batchId}`,
          message: `${e.event_type} ${e.action} ${e.status}`, timestamp: Date.parse(e.created_at), status: e.status === 'failure' ? 'warn' : 'info', audit: e,
        }))),
      };
    default: {
      const body = JSON.stringify(events);
      const timestamp = Math.floor(now.getTime() / 1000);
      return { headers: { ...common, 'content-type': 'application/json', 'x-memorysync-timestamp': String(timestamp), 'x-memorysync-signature': signPayload(token, timestamp, body) }, body };
    }
  }
}

const deadLetterKey = (tenantId: string, forwarderId: string, batchId: string) => `${DEAD_LETTER_PREFIX}/${tenantId}/${forwarderId}/${batchId}.json`;

/** Posts one batch to the forwarder's target through the SSRF guard; throws with a short reason on anything but 2xx. */
async function postBatch(deps: SiemForwardingDeps, forwarder: ForwarderRow, batchId: string, events: SiemEvent[]): Promise<void> {
  const token = await deps.siem.token(forwarder);
  const request = formatSiemBatch(forwarder.type, token, batchId, events, deps.clock.now());
  let status: number;
  try {
    status = (await deps.outbound.send(forwarder.url, { ...request, timeoutMs: REQUEST_TIMEOUT_MS })).status;
  } catch (error) {
    throw new Error(error instanceof SsrfBlockedError ? `blocked by the SSRF guard: ${error.reason}` : `request failed: ${(error as Error).message}`);
  }
  if (status < 200 || status >= 300) throw new Error(status >= 300 && status < 400 ? `redirect (${status}) not followed` : `HTTP ${status}`);
}

/** Cuts the next batch after the forwarder's cursor and writes its 'forward' task; none when there is nothing new. */
async function queueNextBatch(trx: Kysely<Database>, forwarder: Pick<ForwarderRow, 'id' | 'tenant_id'>, afterId: number, now: Date): Promise<Task | undefined> {
  const last = await trx
    .selectFrom((qb) => qb.selectFrom('audit_logs').select('id').where('tenant_id', '=', forwarder.tenant_id).where('id', '>', afterId).orderBy('id').limit(SIEM_BATCH_SIZE).as('b'))
    .select((eb) => eb.fn.max('b.id').as('through'))
    .executeTakeFirst();
  if (last?.through == null) return undefined;
  const throughId = Number(last.through);
  const batchId = `${forwarder.id}_${afterId + 1}_${throughId}`;
  const task: Task = {
    id: `siem-forward:${batchId}:${now.getTime()}`, family: 'siem-forwarding', tenantId: forwarder.tenant_id, type: 'forward',
    payload: { forwarderId: forwarder.id, batchId, afterId, throughId } satisfies ForwardPayload, createdAt: now.toISOString(),
  };
  await trx.updateTable('siem_forwarders').set({ batch_id: batchId, batch_queued_at: now }).where('tenant_id', '=', forwarder.tenant_id).where('id', '=', forwarder.id).execute();
  await enqueueTasks(trx, [task]);
  return task;
}

/**
 * The `siem-forward` job (every minute): for each enabled forwarder with no batch in flight (or a
 * stale one), cuts a batch of up to 500 audit rows of its own tenant after its cursor and queues it.
 * One batch in flight per forwarder keeps the order; a full batch queues the next as soon as it lands.
 */
export async function scheduleSiemBatches(deps: SiemForwardingDeps): Promise<{ queued: number }> {
  const now = deps.clock.now();
  const forwarders = await deps.db.kysely
    .selectFrom('siem_forwarders')
    .select(['id', 'tenant_id', 'cursor'])
    .where('enabled', '=', true)
    .where((eb) => eb.or([eb('batch_id', 'is', null), eb('batch_queued_at', '<', new Date(now.getTime() - STALE_BATCH_MS))]))
    .execute();
  const taskIds: string[] = [];
  for (const f of forwarders) {
    const task = await deps.db.kysely.transaction().execute((trx) => queueNextBatch(trx, f, Number(f.cursor), now));
    if (task) taskIds.push(task.id);
  }
  if (taskIds.length) await deps.relay.relayNow(taskIds).catch((error) => deps.logger.warn('SIEM relay failed; the outbox sweep will send', { error: (error as Error).message }));
  return { queued: taskIds.length };
}

/**
 * The siem-forwarding family: `forward` posts one batch; on success the cursor moves past it. A failure is
 * retried by the queue; the last attempt writes the batch to the object store as a dead letter and moves the
 * cursor on, so one bad batch never blocks the rows after it. Stored dead letters are re-sent by
 * `redriveSiemDeadLetters` (the admin route), not by a task.
 */
export function siemForwardingHandlers(deps: SiemForwardingDeps): Record<string, TaskHandler> {
  const forward: TaskHandler<ForwardPayload> = async (task, ctx) => {
    const tenantId = task.tenantId;
    if (!tenantId) return;
    const { forwarderId, batchId, afterId, throughId } = task.payload;
    const forwarder = await ctx.db.kysely.selectFrom('siem_forwarders').selectAll().where('tenant_id', '=', tenantId).where('id', '=', forwarderId).executeTakeFirst();
    // Deleted, disabled, or this batch already settled by another copy of the task.
    if (!forwarder || !forwarder.enabled || forwarder.batch_id !== batchId) return;
    const rows = await ctx.db.kysely.selectFrom('audit_logs').selectAll().where('tenant_id', '=', tenantId).where('id', '>', afterId).where('id', '<=', throughId).orderBy('id').execute();
    const events = rows.map(toSiemEvent);

    let failure: string | undefined;
    if (events.length) {
      try {
        await postBatch(deps, forwarder, batchId, events);
      } catch (error) {
        failure = (error as Error).message.slice(0, 500);
      }
    }
    const now = deps.clock.now();
    if (failure && ctx.receiveCount < SIEM_FORWARD_MAX_ATTEMPTS) {
      await ctx.db.kysely.updateTable('siem_forwarders').set({ last_error: failure }).where('tenant_id', '=', tenantId).where('id', '=', forwarderId).execute();
      throw new Error(`SIEM batch not accepted: ${failure}`);
    }
    if (failure) {
      const letter: SiemDeadLetter = {
        batch_id: batchId, tenant_id: tenantId, forwarder_id: forwarderId, type: forwarder.type, after_id: afterId, through_id: throughId,
        attempts: ctx.receiveCount, last_error: failure, dead_lettered_at: now.toISOString(), events,
      };
      await deps.objects.put(deadLetterKey(tenantId, forwarderId, batchId), JSON.stringify(letter), 'application/json');
      ctx.logger.warn('SIEM batch dead-lettered', { forwarderId, batchId, events: events.length, error: failure });
    }

    const next = await ctx.transaction(async (trx) => {
      const moved = await trx
        .updateTable('siem_forwarders')
        .set((eb) => ({
          cursor: throughId, batch_id: null, batch_queued_at: null, updated_at: now,
          ...(failure
            ? { last_error: failure, dead_letter_count: eb('dead_letter_count', '+', 1) }
            : { last_error: null, last_success_at: now, forwarded_count: sql<string>`forwarded_count + ${events.length}` }),
        }))
        .where('tenant_id', '=', tenantId)
        .where('id', '=', forwarderId)
        .where('batch_id', '=', batchId)
        .executeTakeFirst();
      // More rows may already wait: cut the next batch now instead of a minute later.
      return Number(moved.numUpdatedRows) === 1 ? queueNextBatch(trx, forwarder, throughId, now) : undefined;
    });
    if (next) await deps.relay.relayNow([next.id]).catch((error) => ctx.logger.warn('SIEM relay failed; the outbox sweep will send', { error: (error as Error).message }));
  };

  return { forward: forward as TaskHandler };
}

// ------------------------------------------------------------------ dead letters

export interface DeadLetterFilter {
  tenantId?: string;
  forwarderId?: string;
  /** at most this many dead letters (default 100) */
  limit?: number;
}

function prefixFor(filter: DeadLetterFilter): string {
  if (filter.forwarderId && !filter.tenantId) return `${DEAD_LETTER_PREFIX}/`;
  return [DEAD_LETTER_PREFIX, filter.tenantId, filter.tenantId ? filter.forwarderId : undefined].filter(Boolean).join('/') + '/';
}

async function deadLetterKeys(deps: Pick<SiemForwardingDeps, 'objects'>, filter: DeadLetterFilter): Promise<string[]> {
  const keys = (await deps.objects.list(prefixFor(filter))).filter((k) => k.endsWith('.json')).sort();
  return filter.forwarderId ? keys.filter((k) => k.split('/')[2] === filter.forwarderId) : keys;
}

async function readDeadLetter(deps: Pick<SiemForwardingDeps, 'objects'>, key: string): Promise<SiemDeadLetter | undefined> {
  const bytes = await deps.objects.get(key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as SiemDeadLetter) : undefined;
}

/** Dead-lettered SIEM batches (newest keys last), without their events: for the admin listing. */
export async function listSiemDeadLetters(deps: Pick<SiemForwardingDeps, 'objects'>, filter: DeadLetterFilter = {}) {
  const keys = await deadLetterKeys(deps, filter);
  const items = [];
  for (const key of keys.slice(0, filter.limit ?? 100)) {
    const letter = await readDeadLetter(deps, key);
    if (!letter) continue;
    const { events, ...summary } = letter;
    items.push({ key, ...summary, event_count: events.length });
  }
  return { items, total: keys.length };
}

export interface RedriveResult {
  redriven: number;
  failed: number;
  /** dead letters still stored after this run (failed ones and those past the limit) */
  remaining: number;
  results: Array<{ key: string; status: 'redriven' | 'failed'; error?: string }>;
}

/**
 * Re-sends dead-lettered SIEM batches to their forwarder's current target with their original batch
 * id (SIEMs can deduplicate on it); a batch that lands is deleted from the object store, one that
 * fails stays for the next re-drive. Used by `POST /admin/siem/dead-letters/redrive`.
 */
export async function redriveSiemDeadLetters(deps: SiemForwardingDeps, filter: DeadLetterFilter = {}): Promise<RedriveResult> {
  const keys = await deadLetterKeys(deps, filter);
  const result: RedriveResult = { redriven: 0, failed: 0, remaining: 0, results: [] };
  for (const key of keys.slice(0, filter.limit ?? 100)) {
    const letter = await readDeadLetter(deps, key);
    if (!letter) continue;
    const forwarder = await deps.db.kysely.selectFrom('siem_forwarders').selectAll().where('tenant_id', '=', letter.tenant_id).where('id', '=', letter.forwarder_id).executeTakeFirst();
    let error: string | undefined;
    if (!forwarder) error = 'forwarder no longer exists';
    else if (!forwarder.enabled) error = 'forwarder is disabled';
    else {
      try {
        await postBatch(deps, forwarder, letter.batch_id, letter.events);
      } catch (e) {
        error = (e as Error).message.slice(0, 500);
      }
    }
    if (error) {
      result.failed += 1;
      result.results.push({ key, status: 'failed', error });
      continue;
    }
    await deps.objects.delete([key]);
    result.redriven += 1;
    result.results.push({ key, status: 'redriven' });
  }
  result.remaining = keys.length - result.redriven;
  deps.logger.info('SIEM dead letters re-driven', { redriven: result.redriven, failed: result.failed, remaining: result.remaining });
  return result;
}
