import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { DEFAULT_GRACE_DAYS } from '../tasks/retention.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { Scope } from './scope.ts';

export interface RetentionPolicy {
  project_id: string;
  /** memories older than this many days (by creation) are soft-deleted by the hourly sweep; null = kept */
  max_age_days: number | null;
  /** days a soft-deleted memory stays restorable before it is purged */
  grace_days: number;
  /** false when the project has no stored policy and these are the defaults */
  configured: boolean;
  updated_at: string | null;
}

/** Per-project retention policies read by the retention worker (shared/tasks/retention.ts). */
export class RetentionPolicyService {
  constructor(private readonly deps: { db: Kysely<Database>; clock: Clock }) {}

  async get(scope: Scope, projectId: string): Promise<RetentionPolicy> {
    await this.projectOrThrow(this.deps.db, scope, projectId);
    const row = await this.deps.db.selectFrom('retention_policies').selectAll().where('tenant_id', '=', scope.tenantId).where('project_id', '=', projectId).executeTakeFirst();
    if (!row) return { project_id: projectId, max_age_days: null, grace_days: DEFAULT_GRACE_DAYS, configured: false, updated_at: null };
    return { project_id: projectId, max_age_days: row.max_age_days, grace_days: row.grace_days, configured: true, updated_at: new Date(row.updated_at).toISOString() };
  }

  async put(scope: Scope, projectId: string, input: { max_age_days: number | null; grace_days?: number }, meta: AuditMeta): Promise<RetentionPolicy> {
    const now = this.deps.clock.now();
    return this.deps.db.transaction().execute(async (trx) => {
      await this.projectOrThrow(trx, scope, projectId);
      const values = { max_age_days: input.max_age_days, grace_days: input.grace_days ?? DEFAULT_GRACE_DAYS, updated_by: principalLabel(scope.principal), updated_at: now };
      const row = await trx
        .insertInto('retention_policies')
        .values({ project_id: projectId, tenant_id: scope.tenantId, ...values, created_at: now })
        .onConflict((oc) => oc.column('project_id').doUpdateSet(values).where('retention_policies.tenant_id', '=', scope.tenantId))
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(trx, {
        ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal),
        eventType: 'project.retention_updated', category: 'org', resourceType: 'project', resourceId: projectId, action: 'update', status: 'success', statusCode: 200,
        payload: { max_age_days: row.max_age_days, grace_days: row.grace_days },
      });
      meta.audit.written = true;
      return { project_id: projectId, max_age_days: row.max_age_days, grace_days: row.grace_days, configured: true, updated_at: new Date(row.updated_at).toISOString() };
    });
  }

  private async projectOrThrow(db: Kysely<Database>, scope: Scope, projectId: string) {
    const lock = scope.principal.projectLock;
    const row = lock && lock !== projectId ? undefined : await db.selectFrom('projects').select('id').where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).executeTakeFirst();
    if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'Project not found');
  }
}
