import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Clock } from '../ports/clock.ts';
import type { Summarizer } from '../ports/summarizer.ts';
import type { AuditMeta } from '../services/identity-service.ts';
import type { MemoryService } from '../services/memory-service.ts';
import { SCOPES, type EndUserScope, type Principal } from '../services/scope.ts';
import type { TaskHandler } from './worker-runtime.ts';

export const SUMMARY_DEFAULTS = {
  /** a session or window with fewer memories is not summarised */
  minMemories: 3,
  /** a session is summarised once it has had no new memory for this long */
  sessionIdleMinutes: 30,
  maxSentences: 5,
  /** memories read per group (the most recent ones) */
  maxMemories: 200,
} as const;

export interface SummarizationDeps {
  db: Kysely<Database>;
  clock: Clock;
  memories: Pick<MemoryService, 'add' | 'openTexts'>;
  summarizer: Summarizer;
}

export interface SummaryGroup {
  /** `session` (metadata.session_id) or `day` (a closed UTC day of memories without a session) */
  kind: 'session' | 'day';
  key: string;
  memoryIds: number[];
}

export interface SummarizeUserResult {
  created: Array<{ kind: string; key: string; memory_id: number; sources: number }>;
  skipped: number;
}

/** The principal summaries are written as: the platform itself, inside the tenant. */
const workerPrincipal = (tenantId: string): Principal => ({
  kind: 'session', tenantId, accountId: null, accountPublicId: 'summarization-worker', apiKeyId: null, role: 'owner', scopes: [...SCOPES],
  projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false,
});

/**
 * The groups of one end user's memories that are ready for a summary and do not have one yet:
 * sessions (metadata.session_id) idle for `sessionIdleMinutes`, and closed UTC days of memories
 * without a session. A summary's idempotency key is `summary:<kind>:<key>`, so a group is summarised
 * once; memories added to a session after its summary are not folded in.
 */
export async function summaryGroups(deps: Pick<SummarizationDeps, 'db' | 'clock'>, scope: { tenantId: string; userId: number }, options: { sessionId?: string } = {}): Promise<SummaryGroup[]> {
  const now = deps.clock.now();
  const rows = await deps.db
    .selectFrom('memories')
    .select(['id', 'metadata', 'created_at'])
    .where('tenant_id', '=', scope.tenantId)
    .where('user_id', '=', scope.userId)
    .where('retention_status', '=', 'active')
    .where('is_summary', '=', false)
    .orderBy('id')
    .execute();
  const done = new Set(
    (await deps.db.selectFrom('memories').select('idempotency_key').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('is_summary', '=', true).where('idempotency_key', 'like', 'summary:%').execute()).map((r) => r.idempotency_key),
  );
  const groups = new Map<string, SummaryGroup & { last: number }>();
  const today = now.toISOString().slice(0, 10);
  for (const r of rows) {
    const session = (r.metadata as Record<string, unknown> | null)?.session_id;
    const created = new Date(r.created_at);
    let kind: SummaryGroup['kind'];
    let key: string;
    if (typeof session === 'string' || typeof session === 'number') {
      kind = 'session';
      key = String(session);
    } else {
      kind = 'day';
      key = created.toISOString().slice(0, 10);
      if (key >= today) continue; // the day is still open
    }
    if (options.sessionId !== undefined && (kind !== 'session' || key !== options.sessionId)) continue;
    const id = `${kind}:${key}`;
    const g = groups.get(id) ?? groups.set(id, { kind, key, memoryIds: [], last: 0 }).get(id)!;
    g.memoryIds.push(Number(r.id));
    g.last = Math.max(g.last, created.getTime());
  }
  const idleBefore = now.getTime() - SUMMARY_DEFAULTS.sessionIdleMinutes * 60_000;
  return [...groups.values()]
    .filter((g) => g.memoryIds.length >= SUMMARY_DEFAULTS.minMemories && !done.has(`summary:${g.kind}:${g.key}`))
    .filter((g) => g.kind !== 'session' || g.last <= idleBefore || options.sessionId !== undefined)
    .map(({ last: _last, ...g }) => ({ ...g, memoryIds: g.memoryIds.slice(-SUMMARY_DEFAULTS.maxMemories) }));
}

/**
 * Summarises the ready groups of one end user through the Summarizer port; each summary is stored
 * as a memory with is_summary true, source `summarizer`, metadata.summary_of = { kind, key, count },
 * linked to its sources (memory_links kind `summarizes`) in the same transaction.
 */
export async function summarizeUser(deps: SummarizationDeps, scope: { tenantId: string; userId: number }, options: { sessionId?: string; requestId?: string } = {}): Promise<SummarizeUserResult> {
  const groups = await summaryGroups(deps, scope, options);
  const result: SummarizeUserResult = { created: [], skipped: 0 };
  if (groups.length === 0) return result;
  const user = await deps.db.selectFrom('users').select(['external_id', 'public_id']).where('tenant_id', '=', scope.tenantId).where('id', '=', scope.userId).executeTakeFirst();
  if (!user) return result;
  const externalId = user.external_id?.startsWith(`${scope.tenantId}:`) ? user.external_id.slice(scope.tenantId.length + 1) : user.public_id;
  for (const group of groups) {
    const rows = await deps.db.selectFrom('memories').select(['id', 'text_ciphertext', 'project_id', 'environment']).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', group.memoryIds).orderBy('id').execute();
    if (rows.length < SUMMARY_DEFAULTS.minMemories) {
      result.skipped++;
      continue;
    }
    const texts = await deps.memories.openTexts(scope, rows);
    const text = (await deps.summarizer.summarize(texts, { maxSentences: SUMMARY_DEFAULTS.maxSentences })).trim();
    if (!text) {
      result.skipped++;
      continue;
    }
    const projects = new Set(rows.map((r) => r.project_id));
    const endUser: EndUserScope = {
      tenantId: scope.tenantId, projectId: projects.size === 1 ? rows[0].project_id : null, principal: workerPrincipal(scope.tenantId),
      userId: scope.userId, endUserExternalId: externalId, environment: rows[0].environment,
    };
    const meta: AuditMeta = { requestId: options.requestId ?? `summarize-${group.kind}-${group.key}`, ipAddress: null, userAgent: 'memorysync-summarization-worker', audit: { written: false } };
    const outcome = await deps.memories.add(endUser, {
      text, is_summary: true, source: 'summarizer', memory_type: 'summary', deduplicate: false,
      idempotency_key: `summary:${group.kind}:${group.key}`,
      metadata: { summary_of: { kind: group.kind, key: group.key, count: rows.length }, ...(group.kind === 'session' ? { session_id: group.key } : {}) },
      links: { to: rows.map((r) => Number(r.id)), kind: 'summarizes' },
    }, meta, { auditEvent: 'memory.summarized' });
    if (outcome.status === 'created') result.created.push({ kind: group.kind, key: group.key, memory_id: outcome.memory.id, sources: rows.length });
    else result.skipped++;
  }
  return result;
}

/** End users of a tenant with memories created since `since` (candidates for the summarize job). */
export async function usersWithRecentMemories(db: Kysely<Database>, since: Date): Promise<Array<{ tenantId: string; userId: number }>> {
  const rows = await db.selectFrom('memories').select(['tenant_id', 'user_id']).distinct().where('is_summary', '=', false).where('created_at', '>=', since).execute();
  return rows.map((r) => ({ tenantId: r.tenant_id, userId: r.user_id }));
}

/**
 * The summarization family: `summarize-user` (payload { userId, sessionId? }) summarises the ready
 * sessions and closed days of one end user. Idempotent: a group with a summary is not summarised again.
 */
export function summarizationHandlers(deps: SummarizationDeps): Record<string, TaskHandler> {
  return {
    'summarize-user': (async (task, ctx) => {
      if (!task.tenantId) return;
      const result = await summarizeUser(deps, { tenantId: task.tenantId, userId: task.payload.userId }, { sessionId: task.payload.sessionId, requestId: `task-${task.id}` });
      ctx.logger.info('summaries written', { created: result.created.length, skipped: result.skipped });
    }) as TaskHandler<{ userId: number; sessionId?: string }>,
  };
}
