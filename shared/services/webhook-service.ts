import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from '../db/schema.ts';
import { AppError, conflict, notFound, validationError } from '../errors.ts';
import { open, seal } from '../crypto/aead.ts';
import { randomToken } from '../crypto/hashing.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import type { OutboundHttp } from '../net/ssrf-guard.ts';
import { assertOutboundTarget } from './outbound-target.ts';
import type { Clock } from '../ports/clock.ts';
import type { Task } from '../ports/queue.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { OutboxPort } from './memory-service.ts';
import type { Scope } from './scope.ts';
import { DEFAULT_MAX_RETRIES, WEBHOOK_TEST_EVENT } from './webhook-events.ts';

type WebhookRow = Selectable<WebhooksTable>;
type DeliveryRow = Selectable<WebhookDeliveriesTable>;

export interface WebhookServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  tenantKeys: TenantKeyService;
  outbox: OutboxPort;
  outbound: OutboundHttp;
}

export interface CreateWebhookInput {
  name: string;
  url: string;
  events: string[];
  project_id?: string | null;
  description?: string | null;
  retry_config?: { max_attempts?: number; backoff_seconds?: number };
  signature_config?: { algorithm: 'sha256' };
  auth_header_name?: string;
  auth_header_value?: string;
}

export interface UpdateWebhookInput extends Partial<Omit<CreateWebhookInput, 'auth_header_name' | 'auth_header_value'>> {
  auth_header_name?: string | null;
  auth_header_value?: string | null;
  active?: boolean;
}

/** A webhook endpoint with its secrets opened, for the delivery worker. */
export interface WebhookTarget {
  row: WebhookRow;
  secret: string;
  authHeader: { name: string; value: string } | null;
}

const secretAad = (tenantId: string, id: string) => `webhook-secret:${tenantId}:${id}`;
const authAad = (tenantId: string, id: string) => `webhook-auth:${tenantId}:${id}`;
const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

export const newDeliveryId = (): string => `whd_${randomBytes(10).toString('hex')}`;
/** The event id is derived from the task that announced it, so a re-run fan-out reuses it. */
export const eventIdFor = (taskId: string): string => `evt_${createHash('sha256').update(taskId).digest('hex').slice(0, 24)}`;

/** The body every attempt of a delivery sends (API.md §3.2). */
export function eventBody(input: { eventId: string; event: string; createdAt: string; tenantId: string; projectId: string | null; data: Record<string, unknown> }): string {
  return JSON.stringify({ id: input.eventId, event: input.event, created_at: input.createdAt, tenant_id: input.tenantId, project_id: input.projectId, data: input.data });
}

/** The 'deliver' task of attempt `attempt` of a delivery; its id makes each attempt run once. */
export function deliverTask(tenantId: string, deliveryId: string, attempt: number, now: Date): Task {
  return {
    id: `webhook-deliver:${deliveryId}:${attempt}`, family: 'webhook-delivery', tenantId, type: 'deliver',
    payload: { deliveryId, attempt }, createdAt: now.toISOString(),
  };
}

export function toWebhookResponse(row: WebhookRow) {
  return {
    id: row.id, name: row.name, url: row.url, description: row.description, events: row.events, project_id: row.project_id,
    retry_config: { max_attempts: row.retry_config.max_attempts ?? DEFAULT_MAX_RETRIES, backoff_seconds: row.retry_config.backoff_seconds ?? null },
    signature_config: { algorithm: row.signature_config.algorithm ?? 'sha256' },
    auth_header_name: row.auth_header_name, has_auth_header: row.auth_header_value_ciphertext !== null,
    active: row.status === 'active', status: row.status, disabled_reason: row.disabled_reason, consecutive_failures: row.consecutive_failures,
    created_at: iso(row.created_at)!, updated_at: iso(row.updated_at)!,
  };
}

function toDeliveryResponse(row: DeliveryRow, attempts: Array<{ attempt: number; status_code: number | null; latency_ms: number; success: boolean; error: string | null; created_at: Date }>) {
  return {
    id: row.id, webhook_id: row.webhook_id, event: row.event, event_id: row.event_id, status: row.status, attempts: row.attempts,
    last_status_code: row.last_status_code, last_error: row.last_error, next_attempt_at: iso(row.next_attempt_at),
    created_at: iso(row.created_at), delivered_at: iso(row.delivered_at), dead_lettered_at: iso(row.dead_lettered_at),
    attempt_log: attempts.map((a) => ({ attempt: a.attempt, status_code: a.status_code, latency_ms: a.latency_ms, success: a.success, error: a.error, created_at: iso(a.created_at) })),
  };
}

/**
 * Webhook endpoints of a tenant (`/org/webhooks`): configuration with sealed secrets, the delivery
 * log, test events and replays. Every query is built from the caller's scope; mutations write their
 * audit row in their own transaction.
 */
export class WebhookService {
  constructor(private readonly deps: WebhookServiceDeps) {}

  async create(scope: Scope, input: CreateWebhookInput, meta: AuditMeta) {
    await assertOutboundTarget(this.deps.outbound, input.url);
    if (input.project_id) await this.assertProject(scope, input.project_id);
    const id = `wh_${randomBytes(8).toString('hex')}`;
    const secret = `whsec_${randomToken(32)}`;
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('webhooks')
        .values({
          id, tenant_id: scope.tenantId, project_id: input.project_id ?? null, name: input.name, url: input.url,
          description: input.description ?? null, events: JSON.stringify(input.events),
          secret_ciphertext: seal(keys.dataKey, secret, secretAad(scope.tenantId, id)),
          auth_header_name: input.auth_header_name ?? null,
          auth_header_value_ciphertext: input.auth_header_value ? seal(keys.dataKey, input.auth_header_value, authAad(scope.tenantId, id)) : null,
          retry_config: JSON.stringify(input.retry_config ?? {}), signature_config: JSON.stringify(input.signature_config ?? { algorithm: 'sha256' }),
          created_by: scope.principal.accountId, created_at: now, updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      // the host only: a URL's path or query may carry a customer token
      await this.audit(trx, scope, meta, 'webhook.created', 'create', id, 201, { host: new URL(input.url).host, events: input.events });
      return { ...toWebhookResponse(row), secret };
    });
  }

  async list(scope: Scope, page: { limit: number; offset: number }) {
    const base = this.deps.db.selectFrom('webhooks').where('tenant_id', '=', scope.tenantId);
    const [{ n }, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(page.limit).offset(page.offset).execute(),
    ]);
    return { items: rows.map(toWebhookResponse), total: Number(n), limit: page.limit, offset: page.offset };
  }

  async get(scope: Scope, id: string) {
    return toWebhookResponse(await this.rowOrThrow(this.deps.db, scope, id));
  }

  async update(scope: Scope, id: string, input: UpdateWebhookInput, meta: AuditMeta) {
    if (input.url !== undefined) await assertOutboundTarget(this.deps.outbound, input.url);
    if (input.project_id) await this.assertProject(scope, input.project_id);
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    return this.deps.db.transaction().execute(async (trx) => {
      const current = await this.rowOrThrow(trx, scope, id, true);
      const patch: Record<string, unknown> = { updated_at: now };
      for (const field of ['name', 'url', 'description', 'project_id'] as const) if (input[field] !== undefined) patch[field] = input[field];
      if (input.events) patch.events = JSON.stringify(input.events);
      if (input.retry_config) patch.retry_config = JSON.stringify(input.retry_config);
      if (input.signature_config) patch.signature_config = JSON.stringify(input.signature_config);
      if (input.auth_header_name === null) {
        patch.auth_header_name = null;
        patch.auth_header_value_ciphertext = null;
      } else if (input.auth_header_name !== undefined) {
        if (input.auth_header_value == null && !current.auth_header_value_ciphertext) throw validationError('auth_header_value is required with a new auth_header_name', [{ loc: ['body', 'auth_header_value'], msg: 'Field required' }]);
        patch.auth_header_name = input.auth_header_name;
      }
      if (input.auth_header_value) patch.auth_header_value_ciphertext = seal(keys.dataKey, input.auth_header_value, authAad(scope.tenantId, id));
      if (input.active === true) Object.assign(patch, { status: 'active', disabled_reason: null, disabled_at: null, consecutive_failures: 0 });
      if (input.active === false && current.status === 'active') Object.assign(patch, { status: 'disabled', disabled_reason: 'disabled_by_user', disabled_at: now });
      const row = await trx.updateTable('webhooks').set(patch).where('tenant_id', '=', scope.tenantId).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      await this.audit(trx, scope, meta, 'webhook.updated', 'update', id, 200, { fields: Object.keys(input) });
      return toWebhookResponse(row);
    });
  }

  async delete(scope: Scope, id: string, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.deleteFrom('webhooks').where('tenant_id', '=', scope.tenantId).where('id', '=', id).returning('id').executeTakeFirst();
      if (!row) throw notFound('Webhook not found');
      await this.audit(trx, scope, meta, 'webhook.deleted', 'delete', id, 200);
      return { id, deleted: true };
    });
  }

  async listDeliveries(scope: Scope, webhookId: string, query: { status?: string; limit: number; offset: number }) {
    await this.rowOrThrow(this.deps.db, scope, webhookId);
    let base = this.deps.db.selectFrom('webhook_deliveries').where('tenant_id', '=', scope.tenantId).where('webhook_id', '=', webhookId);
    if (query.status) base = base.where('status', '=', query.status);
    const [{ n }, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(query.limit).offset(query.offset).execute(),
    ]);
    const attempts = rows.length
      ? await this.deps.db.selectFrom('webhook_delivery_attempts').select(['delivery_id', 'attempt', 'status_code', 'latency_ms', 'success', 'error', 'created_at'])
        .where('tenant_id', '=', scope.tenantId).where('delivery_id', 'in', rows.map((r) => r.id)).orderBy('attempt').execute()
      : [];
    return {
      items: rows.map((r) => toDeliveryResponse(r, attempts.filter((a) => a.delivery_id === r.id))),
      total: Number(n), limit: query.limit, offset: query.offset,
    };
  }

  /** Queues a `webhook.test` delivery to this one endpoint, whatever events it subscribes to. */
  async sendTest(scope: Scope, webhookId: string, meta: AuditMeta) {
    const now = this.deps.clock.now();
    const deliveryId = newDeliveryId();
    const eventId = `evt_${randomBytes(12).toString('hex')}`;
    const task = deliverTask(scope.tenantId, deliveryId, 1, now);
    await this.deps.db.transaction().execute(async (trx) => {
      const hook = await this.rowOrThrow(trx, scope, webhookId, true);
      if (hook.status !== 'active') throw conflict('The webhook is disabled; enable it (PATCH active: true) first');
      await trx.insertInto('webhook_deliveries').values({
        id: deliveryId, tenant_id: scope.tenantId, webhook_id: webhookId, event_id: eventId, event: WEBHOOK_TEST_EVENT,
        body: eventBody({ eventId, event: WEBHOOK_TEST_EVENT, createdAt: now.toISOString(), tenantId: scope.tenantId, projectId: hook.project_id, data: { message: 'Test event from MemorySync', webhook_id: webhookId } }),
        created_at: now, updated_at: now,
      }).execute();
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, scope, meta, 'webhook.test_sent', 'test', webhookId, 202, { delivery_id: deliveryId });
    });
    await this.deps.outbox.relay([task.id]);
    return { status: 'queued', delivery_id: deliveryId, event_id: eventId, event: WEBHOOK_TEST_EVENT };
  }

  /** Queues one more attempt of a dead-lettered (or delivered) delivery, with a fresh retry budget. */
  async replay(scope: Scope, deliveryId: string, meta: AuditMeta) {
    const now = this.deps.clock.now();
    let task: Task | undefined;
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const delivery = await trx.selectFrom('webhook_deliveries').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', deliveryId).forUpdate().executeTakeFirst();
      if (!delivery) throw notFound('Delivery not found');
      if (delivery.status !== 'dead_lettered' && delivery.status !== 'delivered') throw conflict(`The delivery is ${delivery.status}; only dead-lettered or delivered ones can be replayed`);
      const hook = await this.rowOrThrow(trx, scope, delivery.webhook_id);
      if (hook.status !== 'active') throw conflict('The webhook is disabled; enable it (PATCH active: true) first');
      task = deliverTask(scope.tenantId, deliveryId, delivery.attempts + 1, now);
      await trx.updateTable('webhook_deliveries')
        .set({ status: 'pending', cycle_attempts: 0, next_attempt_at: null, dead_lettered_at: null, updated_at: now })
        .where('tenant_id', '=', scope.tenantId).where('id', '=', deliveryId).execute();
      await this.deps.outbox.enqueue(trx, [task]);
      await this.audit(trx, scope, meta, 'webhook.delivery_replayed', 'replay', deliveryId, 202, { webhook_id: delivery.webhook_id, previous_status: delivery.status });
      return { status: 'queued', delivery_id: deliveryId, attempt: delivery.attempts + 1 };
    });
    await this.deps.outbox.relay([task!.id]);
    return result;
  }

  /** The endpoint with its signing secret and auth header opened; `undefined` when it is gone. */
  async target(db: Kysely<Database>, tenantId: string, webhookId: string): Promise<WebhookTarget | undefined> {
    const row = await db.selectFrom('webhooks').selectAll().where('tenant_id', '=', tenantId).where('id', '=', webhookId).executeTakeFirst();
    if (!row) return undefined;
    const keys = await this.deps.tenantKeys.forTenant(tenantId);
    const secret = open(keys.dataKey, row.secret_ciphertext, secretAad(tenantId, row.id)).toString('utf8');
    const authHeader = row.auth_header_name && row.auth_header_value_ciphertext
      ? { name: row.auth_header_name, value: open(keys.dataKey, row.auth_header_value_ciphertext, authAad(tenantId, row.id)).toString('utf8') }
      : null;
    return { row, secret, authHeader };
  }

  // ---------------------------------------------------------------- internals

  private async assertProject(scope: Scope, projectId: string): Promise<void> {
    const project = await this.deps.db.selectFrom('projects').select('id').where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).executeTakeFirst();
    if (!project) throw new AppError('NOT_FOUND', 404, 'Project not found');
  }

  private async rowOrThrow(db: Kysely<Database>, scope: Scope, id: string, lock = false): Promise<WebhookRow> {
    let q = db.selectFrom('webhooks').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', id);
    if (lock) q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound('Webhook not found');
    return row;
  }

  private async audit(trx: Kysely<Database>, scope: Scope, meta: AuditMeta, eventType: string, action: string, resourceId: string, statusCode: number, payload: Record<string, unknown> = {}) {
    await writeAudit(trx, {
      ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal),
      eventType, category: 'org', resourceType: 'webhook', resourceId, action, status: 'success', statusCode, payload,
    });
    meta.audit.written = true;
  }
}
