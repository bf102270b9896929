import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { hmacHex } from '../crypto/hashing.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { principalLabel } from './identity-service.ts';
import { REFUSAL_MESSAGES, refusalReason, type RefusalReason } from './refusal-policy.ts';
import type { EndUserScope, Scope } from './scope.ts';

export interface RefusalLogDeps {
  db: Kysely<Database>;
  tenantKeys: TenantKeyService;
  clock: Clock;
}

export interface RefusalItem {
  id: number;
  reason: string;
  message: string;
  channel: string;
  end_user_id: string | null;
  project_id: string | null;
  content_hash: string;
  content_length: number;
  request_id: string | null;
  created_at: string;
}

/**
 * The refusals log: one row per write the policy refused, with the reason, a keyed hash and the length
 * of the text — never the text. The row is written outside the refused write's transaction (there is
 * none: nothing else is stored), so a refusal is recorded even though the request fails with 422.
 */
export class RefusalLog {
  constructor(private readonly deps: RefusalLogDeps) {}

  /** Throws 422 CONTENT_REFUSED, after logging, when the policy refuses `text`. */
  async enforce(scope: EndUserScope, text: string, context: { channel: string; requestId?: string | null }): Promise<void> {
    const reason = await this.check(scope, text, context);
    if (reason) throw new AppError('CONTENT_REFUSED', 422, `Content refused: ${REFUSAL_MESSAGES[reason]}`, [{ loc: ['body', 'text'], msg: REFUSAL_MESSAGES[reason], type: reason }], undefined, { reason });
  }

  /** The refusal reason (logged) or `null`; for callers that reject one item of many instead of the request. */
  async check(scope: EndUserScope, text: string, context: { channel: string; requestId?: string | null }): Promise<RefusalReason | null> {
    const reason = refusalReason(text);
    if (!reason) return null;
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    await this.deps.db
      .insertInto('refusals')
      .values({
        tenant_id: scope.tenantId,
        project_id: scope.projectId,
        user_id: scope.userId,
        end_user_id: scope.endUserExternalId,
        principal: principalLabel(scope.principal),
        channel: context.channel,
        reason,
        content_hash: hmacHex(keys.lexicalKey, `refusal:${text}`),
        content_length: text.length,
        request_id: context.requestId ?? null,
        created_at: this.deps.clock.now(),
      })
      .execute();
    return reason;
  }

  /** The tenant's refusals, newest first (`{items,total,limit,offset}`). */
  async list(scope: Scope, options: { limit: number; offset: number; reason?: string; endUserId?: string }): Promise<{ items: RefusalItem[]; total: number; limit: number; offset: number }> {
    let q = this.deps.db.selectFrom('refusals').where('tenant_id', '=', scope.tenantId);
    if (scope.projectId) q = q.where('project_id', '=', scope.projectId);
    if (options.reason) q = q.where('reason', '=', options.reason);
    if (options.endUserId) q = q.where('end_user_id', '=', options.endUserId);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    const rows = await q.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit).offset(options.offset).execute();
    return {
      items: rows.map((r) => ({
        id: Number(r.id),
        reason: r.reason,
        message: REFUSAL_MESSAGES[r.reason as RefusalReason] ?? r.reason,
        channel: r.channel,
        end_user_id: r.end_user_id,
        project_id: r.project_id,
        content_hash: r.content_hash,
        content_length: r.content_length,
        request_id: r.request_id,
        created_at: new Date(r.created_at).toISOString(),
      })),
      total: Number(total?.n ?? 0),
      limit: options.limit,
      offset: options.offset,
    };
  }

  /** Removes an end user's refusal rows (user purge). */
  async deleteForUser(trx: Kysely<Database>, scope: { tenantId: string; userId: number }): Promise<number> {
    const r = await trx.deleteFrom('refusals').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).executeTakeFirst();
    return Number(r.numDeletedRows ?? 0);
  }
}
