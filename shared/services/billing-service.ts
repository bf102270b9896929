import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { notFound } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { OutboxPort } from './memory-service.ts';
import { orgWebhookTask } from './org-events.ts';
import type { Scope } from './scope.ts';
import type { PlanLimits, UsageListener, UsageService } from './usage-service.ts';

export const PLANS = ['free', 'pro', 'enterprise', 'unlimited'] as const;
export type Plan = (typeof PLANS)[number];
export const QUOTA_MODES = ['silent', 'strict'] as const;

/** Percentages of a monthly limit at which `billing.usage_threshold` is sent, once per period each. */
export const USAGE_THRESHOLDS = [80, 100] as const;

export interface BillingServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  usage: UsageService;
  plans: Record<string, PlanLimits>;
}

/**
 * Tells webhooks when a tenant's monthly counter reaches 80 % and 100 % of its plan limit. Runs inside
 * the transaction that counts the unit; the notices table's primary key makes each notice fire once
 * per period even when requests race. The outbox sweep relays the task after commit.
 */
export function usageThresholdListener(deps: { outbox: Pick<OutboxPort, 'enqueue'>; clock: Clock }): UsageListener {
  return async (trx, record) => {
    for (const threshold of USAGE_THRESHOLDS) {
      if (record.used * 100 < threshold * record.limit) continue;
      const inserted = await trx
        .insertInto('usage_threshold_notices')
        .values({ tenant_id: record.tenantId, period: record.period, kind: record.kind, threshold })
        .onConflict((oc) => oc.doNothing())
        .returning('threshold')
        .executeTakeFirst();
      if (!inserted) continue;
      await deps.outbox.enqueue(trx, [
        orgWebhookTask(record.tenantId, 'billing.usage_threshold', { counter: record.kind, threshold_percent: threshold, used: record.used, limit: record.limit, period: record.period }, deps.clock.now()),
      ]);
    }
  };
}

/** Plan, quota mode and monthly usage of a tenant; plan changes are owner-only at the route. */
export class BillingService {
  constructor(private readonly deps: BillingServiceDeps) {}

  async overview(tenantId: string) {
    const summary = await this.deps.usage.summary(tenantId);
    const notices = await this.deps.db.selectFrom('usage_threshold_notices').select(['kind', 'threshold', 'created_at']).where('tenant_id', '=', tenantId).where('period', '=', summary.period_start.slice(0, 7)).orderBy('created_at').execute();
    return {
      ...summary,
      plans: Object.fromEntries(PLANS.map((p) => [p, { adds_limit: this.deps.plans[p]?.adds || null, queries_limit: this.deps.plans[p]?.queries || null }])),
      thresholds_notified: notices.map((n) => ({ counter: n.kind, threshold_percent: n.threshold, at: new Date(n.created_at).toISOString() })),
    };
  }

  async update(scope: Scope, input: { plan?: Plan; quota_mode?: 'silent' | 'strict' }, meta: AuditMeta) {
    await this.deps.db.transaction().execute(async (trx) => {
      const before = await trx.selectFrom('tenants').select(['plan', 'quota_mode']).where('id', '=', scope.tenantId).forUpdate().executeTakeFirst();
      if (!before) throw notFound('Organization not found');
      await trx.updateTable('tenants').set({ ...(input.plan ? { plan: input.plan } : {}), ...(input.quota_mode ? { quota_mode: input.quota_mode } : {}) }).where('id', '=', scope.tenantId).execute();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'billing.plan_changed', category: 'org', resourceType: 'tenant', resourceId: scope.tenantId, action: 'update', status: 'success', statusCode: 200, payload: { from: before, to: input } });
      meta.audit.written = true;
    });
    await this.deps.usage.forgetPlan(scope.tenantId);
    return this.overview(scope.tenantId);
  }
}
