import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';

export type UsageKind = 'adds' | 'queries';

export interface PlanLimits {
  adds: number; // 0 = unlimited
  queries: number;
}

export interface UsageDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  /** limits per plan name; unknown plans are unlimited */
  plans: Record<string, PlanLimits>;
  defaultQuotaMode: 'silent' | 'strict';
  /** told, inside the recording transaction, of every count against a limited plan (threshold notices) */
  onRecorded?: UsageListener;
}

export interface UsageRecord {
  tenantId: string;
  period: string;
  kind: UsageKind;
  /** the counter after this record */
  used: number;
  limit: number;
}

export type UsageListener = (trx: Kysely<Database>, record: UsageRecord) => Promise<void>;

export const periodOf = (d: Date): string => d.toISOString().slice(0, 7);

/**
 * Monthly plan quotas. Exhaustion is silent by default (the caller answers 200 with nothing done,
 * as the hosted service does); a tenant in strict mode gets 429 `limit_exceeded`.
 */
export class UsageService {
  constructor(private readonly deps: UsageDeps) {}

  /** true when the tenant may do one more `kind`; throws 429 in strict mode when it may not. */
  async allow(tenantId: string, kind: UsageKind): Promise<boolean> {
    const tenant = await this.tenantPlan(tenantId);
    const limit = this.deps.plans[tenant.plan]?.[kind] ?? 0;
    if (!limit) return true;
    const used = await this.used(tenantId, kind);
    if (used < limit) return true;
    if ((tenant.quota_mode ?? this.deps.defaultQuotaMode) === 'strict') {
      throw new AppError('limit_exceeded', 429, `You have reached your monthly limit of ${limit} ${kind}. Upgrade your plan or wait for the next period.`, undefined, undefined, { strict: true });
    }
    return false;
  }

  /** Counts one unit; call inside the business transaction so skipped or failed calls never count. */
  async record(trx: Kysely<Database>, tenantId: string, kind: UsageKind, n = 1): Promise<void> {
    const period = periodOf(this.deps.clock.now());
    const row = await trx
      .insertInto('usage_counters')
      .values({ tenant_id: tenantId, period, adds: kind === 'adds' ? n : 0, queries: kind === 'queries' ? n : 0 })
      .onConflict((oc) => oc.columns(['tenant_id', 'period']).doUpdateSet({ [kind]: sql`usage_counters.${sql.ref(kind)} + ${n}` }))
      .returning([kind])
      .executeTakeFirstOrThrow();
    if (!this.deps.onRecorded) return;
    const limit = this.deps.plans[(await this.tenantPlan(tenantId, trx)).plan]?.[kind] ?? 0;
    if (limit) await this.deps.onRecorded(trx, { tenantId, period, kind, used: Number(row[kind]), limit });
  }

  async used(tenantId: string, kind: UsageKind): Promise<number> {
    const row = await this.deps.db.selectFrom('usage_counters').select([kind]).where('tenant_id', '=', tenantId).where('period', '=', periodOf(this.deps.clock.now())).executeTakeFirst();
    return Number(row?.[kind] ?? 0);
  }

  async summary(tenantId: string) {
    const tenant = await this.tenantPlan(tenantId);
    const now = this.deps.clock.now();
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const limits = this.deps.plans[tenant.plan] ?? { adds: 0, queries: 0 };
    return {
      plan: tenant.plan,
      quota_mode: tenant.quota_mode,
      period_start: start.toISOString(),
      period_end: end.toISOString(),
      adds_used: await this.used(tenantId, 'adds'),
      adds_limit: limits.adds || null,
      queries_used: await this.used(tenantId, 'queries'),
      queries_limit: limits.queries || null,
    };
  }

  /** Drops the cached plan so a plan or quota-mode change applies to the next request. */
  async forgetPlan(tenantId: string): Promise<void> {
    await this.deps.cache.del(`tenant-plan:${tenantId}`);
  }

  /** `db` is the caller's transaction when there is one (PGlite has a single connection). */
  private async tenantPlan(tenantId: string, db: Kysely<Database> = this.deps.db): Promise<{ plan: string; quota_mode: string }> {
    const key = `tenant-plan:${tenantId}`;
    const cached = await this.deps.cache.get<{ plan: string; quota_mode: string }>(key);
    if (cached) return cached;
    const row = await db.selectFrom('tenants').select(['plan', 'quota_mode']).where('id', '=', tenantId).executeTakeFirst();
    const value = row ?? { plan: 'free', quota_mode: this.deps.defaultQuotaMode };
    await this.deps.cache.set(key, value, 60);
    return value;
  }
}
