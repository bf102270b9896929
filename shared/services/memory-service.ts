import { randomUUID } from 'node:crypto';
import { sql, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { Database, MemoryRow } from '../db/schema.ts';
import { AppError, conflict, DependencyError, notFound } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import type { Task, TaskFamily } from '../ports/queue.ts';
import { namespaceForUser, type VectorFilter, type VectorHitRow, type VectorMetadata, type VectorRecord, type VectorStore } from '../ports/vector-store.ts';
import { openText, seal } from '../crypto/aead.ts';
import { hmacHex, sha256Hex } from '../crypto/hashing.ts';
import { blindTokens, lexicalTerms } from '../crypto/lexical.ts';
import type { TenantKeyService, TenantKeys } from '../crypto/tenant-keys.ts';
import { auditValues, writeAudit } from './audit.ts';
import { extract } from './extraction.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import { MEMORY_COLUMNS, rowToMemory, type Memory, type MemoryColumnsRow, type ScoredMemory } from './memory-model.ts';
import type { RefusalLog } from './refusal-log.ts';
import { resolveWeights, scoreMemory, type ScoreBreakdown } from './scoring.ts';
import type { EndUserScope } from './scope.ts';
import { periodOf, type UsageService } from './usage-service.ts';

/** Writes tasks in the caller's transaction and relays them after commit (shared/outbox). */
export interface OutboxPort {
  enqueue(trx: Kysely<Database>, tasks: Task[]): Promise<void>;
  /** sends the given tasks now; failures are left for the sweep */
  relay(taskIds: string[]): Promise<void>;
  /** marks tasks done without sending (their work already happened inline) */
  settle(taskIds: string[]): Promise<void>;
}

export interface MemoryServiceDeps {
  db: Kysely<Database>;
  vectors: VectorStore;
  embedder: Embedder;
  cache: Cache;
  clock: Clock;
  tenantKeys: TenantKeyService;
  usage: UsageService;
  outbox: OutboxPort;
  /** the write path's content policy and its log */
  refusals: RefusalLog;
  /** how long the write path waits for embed + index before committing as pending */
  embedBudgetMs: number;
  /** rows the lexical pass looks at */
  lexicalScanLimit: number;
  cacheTtlSeconds: number;
}

export interface AddInput {
  text: string;
  source?: string | null;
  event_type?: string | null;
  tags?: string[];
  ttl_minutes?: number | null;
  importance?: number;
  metadata?: Record<string, unknown>;
  deduplicate?: boolean;
  memory_type?: string;
  idempotency_key?: string | null;
  is_summary?: boolean;
  /** links from the new memory to others of the same end user (a summary to its sources) */
  links?: { to: number[]; kind: string };
}

export type AddOutcome =
  | { status: 'created'; memory: Memory }
  | { status: 'duplicate'; existingId: number }
  | { status: 'quota' };

export interface QueryFilters {
  tags?: string[];
  sources?: string[];
  source?: string;
  event_type?: string;
  memory_type?: string;
  since?: string;
  until?: string;
  include_summaries?: boolean;
  tier?: 'hot' | 'warm' | 'cold';
}

export interface QueryInput {
  query: string;
  k: number;
  filters?: QueryFilters;
  weights?: { semantic?: number; recency?: number; importance?: number };
}

export interface Explanation {
  memoryId: number;
  breakdown: ScoreBreakdown;
  /** whether /memory/query with these filters could return the memory at all */
  eligible: boolean;
  /** why it could not, when not eligible */
  reasons: string[];
  /** its position in the ranking of the query (top 100), or null */
  rank: number | null;
  /** the memory has no vector in the index (yet): its semantic part is 0 */
  indexed: boolean;
  degraded: boolean;
}

export interface QueryResult {
  memories: ScoredMemory[];
  /** true when the semantic path failed and ranking is lexical only */
  degraded: boolean;
  quotaExhausted: boolean;
}

export { DEFAULT_WEIGHTS } from './scoring.ts';

/**
 * The audit row of a read, handed to the service so that it is written by the statement that counts
 * the query (one round trip); the audit middleware then skips the request.
 */
export interface ReadAudit {
  meta: AuditMeta;
  eventType: string;
  route: string;
}

/** A recall candidate's ranking signals, as the candidate statements return them. */
interface Candidate {
  id: number;
  created_at: Date;
  importance: number;
  /** query tokens the memory carries */
  overlap: number;
  /** cosine similarity, null when the memory was not a vector hit */
  score: number | null;
}

/** Query texts whose vectors a process keeps (per tenant), so a repeated query is not embedded again. */
const QUERY_VECTOR_CACHE_SIZE = 512;

export interface RankInput {
  id: number;
  /** cosine similarity from the vector index; undefined when the memory was not a vector candidate */
  semantic: number | undefined;
  /** share of the query's terms found in the memory (blind tokens), 0..1 */
  lexical: number;
  createdAt: Date;
  importance: number;
}

export interface Ranked {
  id: number;
  score: number;
  parts: ScoredMemory['scoreParts'];
}

/**
 * Ranks recall candidates with the one scoring function (shared/services/scoring.ts, also behind
 * /api/v1/explain): relevance from cosine and lexical overlap, blended with recency and importance by
 * the caller's weights. Returns the top k, best first.
 */
export function rankCandidates(candidates: RankInput[], options: { weights?: QueryInput['weights']; degraded: boolean; now: Date; k: number }): Ranked[] {
  const weights = resolveWeights(options.weights);
  return candidates
    .map((c) => {
      const b = scoreMemory({ semantic: c.semantic ?? 0, lexical: c.lexical, createdAt: c.createdAt, importance: c.importance, now: options.now, degraded: options.degraded }, weights);
      return { id: c.id, score: b.final, parts: { semantic: b.semantic, lexical: b.lexical, recency: b.recency, importance: b.importance } };
    })
    .sort((a, b) => b.score - a.score || b.id - a.id)
    .slice(0, options.k);
}

/** How many of the query's blind tokens a memory carries (the lexical signal of recall). */
const overlapSql = (tokens: string[]) => {
  const distinct = [...new Set(tokens)];
  // One containment test per token: plain operator calls, no per-row subquery (the rows matched can be thousands).
  return distinct.length ? sql<number>`(${sql.join(distinct.map((t) => sql`(lexical_tokens @> array[${t}]::text[])::int`), sql` + `)})` : sql<number>`0`;
};

/** Position after the last row of a page (see listPage). */
export interface PageCursor {
  createdUs: string;
  id: number;
}

/** The columns embedding needs: the sealed text, its AAD's owners and the vector metadata. */
export const EMBEDDABLE_COLUMNS = ['id', 'tenant_id', 'user_id', 'text_ciphertext', 'tier', 'retention_status', 'environment', 'project_id', 'tags', 'source'] as const;
export type EmbeddableRow = Pick<MemoryRow, (typeof EMBEDDABLE_COLUMNS)[number]>;
/** Rows decrypted and embedded, not written yet (`vectors[i]` belongs to `rows[i]`). */
export interface ComputedEmbeddings {
  rows: EmbeddableRow[];
  vectors: number[][];
}

/** Retention states whose memories GET /memory/{id} (and summarize) may read. */
const READABLE_STATUSES = ['active', 'archived'];

const normalizeForHash = (text: string) => text.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
const aadFor = (scope: { tenantId: string; userId: number }) => `memorysync:v1:${scope.tenantId}:${scope.userId}`;

/**
 * The memory core: the write path (validate → quota → dedupe → encrypt → one transaction with event,
 * audit and outbox rows → embed and index within a budget) and hybrid recall over vectors and blind
 * lexical tokens. Every query is built from the EndUserScope; nothing here reads by id alone.
 */
export class MemoryService {
  /** recent query vectors, least recently used first (see embedQuery) */
  private readonly queryVectors = new Map<string, number[]>();

  constructor(private readonly deps: MemoryServiceDeps) {}

  // ------------------------------------------------------------------ writes

  async add(scope: EndUserScope, input: AddInput, meta: AuditMeta, options: { auditEvent?: string; webhookEvent?: string | null } = {}): Promise<AddOutcome> {
    await this.deps.refusals.enforce(scope, input.text, { channel: options.auditEvent ?? 'memory.create', requestId: meta.requestId });
    if (!(await this.deps.usage.allow(scope.tenantId, 'adds'))) return { status: 'quota' };
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const prepared = this.prepare(scope, keys, input);
    const dedupe = input.deduplicate !== false && !input.is_summary;

    if (input.idempotency_key) {
      const replay = await this.findByIdempotencyKey(scope, input.idempotency_key);
      if (replay) return { status: 'duplicate', existingId: replay };
    }
    if (dedupe) {
      const existing = await this.findDuplicate(scope, prepared.contentHash);
      if (existing) return { status: 'duplicate', existingId: existing };
    }

    const vector = await this.embedWithinBudget(input.text);
    const embedTaskId = randomUUID();
    // webhook fan-out tasks written in the transaction, sent right after commit (the sweep is only the safety net)
    const relayAfterCommit: string[] = [];
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('memories')
        .values({ ...prepared.values, dedupe_key: dedupe ? prepared.contentHash : null })
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!inserted) return undefined; // a racing twin won the dedupe or idempotency index
      await this.afterInsert(trx, scope, inserted, meta, embedTaskId, { ...options, links: input.links, relayAfterCommit });
      return inserted;
    });
    if (!row) {
      const existing = (input.idempotency_key && (await this.findByIdempotencyKey(scope, input.idempotency_key))) || (await this.findDuplicate(scope, prepared.contentHash));
      if (existing) return { status: 'duplicate', existingId: existing };
      throw conflict('Memory could not be stored because of a concurrent write; retry');
    }
    const indexed = await this.indexAfterCommit(scope, row, vector, embedTaskId);
    await this.deps.outbox.relay(relayAfterCommit);
    await this.invalidateQueries(scope);
    return { status: 'created', memory: rowToMemory({ ...row, embedding_status: indexed ? 'ready' : 'pending' }, input.text, prepared.summary, scope.endUserExternalId) };
  }

  /** Up to 50 items; each is created, skipped (duplicate, also within the batch) or rejected, in input order. */
  async bulkAdd(scope: EndUserScope, items: Array<AddInput | { rejected: string }>, deduplicate: boolean, meta: AuditMeta) {
    const results: Array<{ index: number; status: 'created' | 'skipped' | 'rejected'; memory_ids: number[]; reason: string | null }> = [];
    if (!(await this.deps.usage.allow(scope.tenantId, 'adds'))) {
      return { total: items.length, created: 0, skipped: items.length, rejected: 0, results: items.map((_, index) => ({ index, status: 'skipped' as const, memory_ids: [], reason: 'quota_exceeded' })) };
    }
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const seen = new Map<string, number>();
    const accepted: Array<{ index: number; input: AddInput; prepared: ReturnType<MemoryService['prepare']> }> = [];
    for (const [index, item] of items.entries()) {
      if ('rejected' in item) {
        results.push({ index, status: 'rejected', memory_ids: [], reason: item.rejected });
        continue;
      }
      const refused = await this.deps.refusals.check(scope, item.text, { channel: 'memory.bulk_create', requestId: meta.requestId });
      if (refused) {
        results.push({ index, status: 'rejected', memory_ids: [], reason: `content_refused: ${refused}` });
        continue;
      }
      const prepared = this.prepare(scope, keys, item);
      if (deduplicate && seen.has(prepared.contentHash)) {
        results.push({ index, status: 'skipped', memory_ids: [], reason: `duplicate of item ${seen.get(prepared.contentHash)}` });
        continue;
      }
      seen.set(prepared.contentHash, index);
      accepted.push({ index, input: item, prepared });
    }
    const existing = deduplicate && accepted.length
      ? await this.deps.db.selectFrom('memories').select(['id', 'content_hash']).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('deleted_at', 'is', null).where('content_hash', 'in', accepted.map((a) => a.prepared.contentHash)).execute()
      : [];
    const existingByHash = new Map(existing.map((e) => [e.content_hash, Number(e.id)]));
    const toInsert = accepted.filter((a) => {
      const id = existingByHash.get(a.prepared.contentHash);
      if (id !== undefined) results.push({ index: a.index, status: 'skipped', memory_ids: [id], reason: 'duplicate' });
      return id === undefined;
    });
    const vectors = await this.embedManyWithinBudget(toInsert.map((a) => a.input.text));
    const inserted: Array<{ row: MemoryRow; taskId: string; vector: number[] | null }> = [];
    const relayAfterCommit: string[] = [];
    if (toInsert.length) {
      await this.deps.db.transaction().execute(async (trx) => {
        for (const [i, a] of toInsert.entries()) {
          const row = await trx.insertInto('memories').values({ ...a.prepared.values, dedupe_key: deduplicate ? a.prepared.contentHash : null }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
          if (!row) {
            results.push({ index: a.index, status: 'skipped', memory_ids: [], reason: 'duplicate' });
            continue;
          }
          const taskId = randomUUID();
          await this.afterInsert(trx, scope, row, meta, taskId, { auditEvent: null, webhookEvent: null });
          inserted.push({ row, taskId, vector: vectors?.[i] ?? null });
          results.push({ index: a.index, status: 'created', memory_ids: [Number(row.id)], reason: null });
        }
        if (inserted.length) {
          const batchEvent = this.webhookTask(scope, 'memory.batch_created', { memory_ids: inserted.map((x) => Number(x.row.id)), count: inserted.length });
          await this.deps.outbox.enqueue(trx, [batchEvent]);
          relayAfterCommit.push(batchEvent.id);
        }
        await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.bulk_create', category: 'data', resourceType: 'memory', resourceId: null, action: 'create', status: 'success', statusCode: 207, payload: { created: inserted.length, submitted: items.length } });
        meta.audit.written = true;
      });
      await this.indexManyAfterCommit(scope, inserted);
      await this.deps.outbox.relay(relayAfterCommit);
      await this.invalidateQueries(scope);
    } else {
      meta.audit.written = false;
    }
    results.sort((a, b) => a.index - b.index);
    const count = (s: string) => results.filter((r) => r.status === s).length;
    return { total: items.length, created: count('created'), skipped: count('skipped'), rejected: count('rejected'), results };
  }

  /** Active and archived memories are readable by id; soft-deleted ones only through the lifecycle routes. */
  async get(scope: EndUserScope, id: number): Promise<Memory | undefined> {
    const row = await this.scoped(this.deps.db, scope).where('id', '=', id).where('retention_status', 'in', READABLE_STATUSES).executeTakeFirst();
    if (!row) return undefined;
    return this.decrypt(scope, row);
  }

  /** Readable memories among `ids`, in the order asked; ids of others (or unreadable) are left out. */
  async getMany(scope: EndUserScope, ids: number[]): Promise<Memory[]> {
    if (ids.length === 0) return [];
    const rows = await this.scoped(this.deps.db, scope).where('id', 'in', ids).where('retention_status', 'in', READABLE_STATUSES).execute();
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const out: Memory[] = [];
    for (const id of ids) {
      const row = byId.get(id);
      if (row) out.push(await this.decrypt(scope, row, keys));
    }
    return out;
  }

  async getOrThrow(scope: EndUserScope, id: number): Promise<Memory> {
    const m = await this.get(scope, id);
    if (!m) throw notFound('Memory not found');
    return m;
  }

  async update(scope: EndUserScope, id: number, patch: Partial<AddInput>, meta: AuditMeta): Promise<Memory> {
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const current = await this.getOrThrow(scope, id);
    const now = this.deps.clock.now();
    const textChanged = patch.text !== undefined && patch.text !== current.text;
    if (textChanged) await this.deps.refusals.enforce(scope, patch.text as string, { channel: 'memory.update', requestId: meta.requestId });
    const set: Record<string, unknown> = { updated_at: now };
    let summary = current.summary;
    if (textChanged) {
      const prepared = this.prepare(scope, keys, { ...patch, text: patch.text as string });
      const clash = await this.findDuplicate(scope, prepared.contentHash);
      if (clash && clash !== id) throw conflict(`Another memory (${clash}) already has this text`);
      Object.assign(set, {
        text_ciphertext: prepared.values.text_ciphertext, content_hash: prepared.contentHash, dedupe_key: prepared.contentHash,
        lexical_tokens: prepared.values.lexical_tokens, summary_ciphertext: prepared.values.summary_ciphertext,
        key_points: prepared.values.key_points, memory_type: prepared.values.memory_type, quality_score: prepared.values.quality_score,
        embedding_status: 'pending',
      });
      summary = prepared.summary;
    }
    if (patch.tags !== undefined) set.tags = patch.tags;
    if (patch.metadata !== undefined) set.metadata = JSON.stringify(patch.metadata);
    if (patch.importance !== undefined) set.importance = patch.importance;
    if (patch.source !== undefined) set.source = patch.source;
    if (patch.event_type !== undefined) set.event_type = patch.event_type;
    if (patch.ttl_minutes !== undefined) set.expires_at = patch.ttl_minutes ? new Date(now.getTime() + patch.ttl_minutes * 60_000) : null;

    const vector = textChanged ? await this.embedWithinBudget(patch.text as string) : null;
    const taskId = randomUUID();
    const updatedEvent = this.webhookTask(scope, 'memory.updated', { id, fields: Object.keys(patch) });
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('memories').set(set).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', '=', id).returningAll().executeTakeFirst();
      if (!updated) throw notFound('Memory not found');
      await trx.insertInto('memory_events').values({ tenant_id: scope.tenantId, memory_id: id, event_type: 'updated', data: JSON.stringify({ fields: Object.keys(patch) }) }).execute();
      await this.deps.outbox.enqueue(trx, [
        this.embedTask(scope, taskId, textChanged ? 'embed' : 'sync-metadata', id),
        updatedEvent,
      ]);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.update', category: 'data', resourceType: 'memory', resourceId: String(id), action: 'update', status: 'success', statusCode: 200, payload: { fields: Object.keys(patch) } });
      meta.audit.written = true;
      return updated;
    });
    await this.deps.outbox.relay([updatedEvent.id]);
    let status = row.embedding_status;
    if (textChanged) {
      status = (await this.indexAfterCommit(scope, row, vector, taskId)) ? 'ready' : 'pending';
    } else {
      try {
        await this.deps.vectors.updateMetadata(namespaceForUser(scope.userId), id, this.vectorMetadata(row));
        await this.deps.outbox.settle([taskId]);
      } catch {
        await this.deps.outbox.relay([taskId]);
      }
    }
    await this.invalidateQueries(scope);
    return rowToMemory({ ...row, embedding_status: status }, textChanged ? (patch.text as string) : current.text, summary, scope.endUserExternalId);
  }

  /** Deletes memories of this end user; ids of others are skipped. Returns the ids deleted. */
  async delete(scope: EndUserScope, ids: number[], meta: AuditMeta, auditEvent = 'memory.delete', memoryEvent = 'deleted'): Promise<number[]> {
    if (ids.length === 0) return [];
    const taskId = randomUUID();
    let deletedEvent: Task | undefined;
    const deleted = await this.deps.db.transaction().execute(async (trx) => {
      // A project-scoped caller (X-Project-ID or a project-locked key) deletes only inside its project.
      let doomed = trx.deleteFrom('memories').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', ids);
      if (scope.projectId) doomed = doomed.where('project_id', '=', scope.projectId);
      const rows = await doomed.returning(['id', 'project_id']).execute();
      const deletedIds = rows.map((r) => Number(r.id));
      if (deletedIds.length) {
        await trx.insertInto('memory_events').values(deletedIds.map((id) => ({ tenant_id: scope.tenantId, memory_id: id, event_type: memoryEvent, data: JSON.stringify({}) }))).execute();
        await this.adjustProjectCounts(trx, scope.tenantId, rows.map((r) => r.project_id), -1);
        await this.deps.outbox.enqueue(trx, [
          { id: taskId, family: 'embedding', tenantId: scope.tenantId, type: 'delete-vectors', payload: { userId: scope.userId, memoryIds: deletedIds }, createdAt: this.deps.clock.now().toISOString() },
          (deletedEvent = this.webhookTask(scope, 'memory.deleted', { ids: deletedIds })),
        ]);
      }
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: auditEvent, category: 'data', resourceType: 'memory', resourceId: deletedIds.length === 1 ? String(deletedIds[0]) : null, action: 'delete', status: 'success', statusCode: 200, payload: { requested: ids.length, deleted: deletedIds } });
      meta.audit.written = true;
      return deletedIds;
    });
    if (deleted.length) {
      try {
        await this.deps.vectors.delete(namespaceForUser(scope.userId), deleted);
        await this.deps.outbox.settle([taskId]);
      } catch {
        await this.deps.outbox.relay([taskId]);
      }
      if (deletedEvent) await this.deps.outbox.relay([deletedEvent.id]);
      await this.invalidateQueries(scope);
    }
    return deleted;
  }

  // ------------------------------------------------------------------ reads

  /** Searchable memories, newest first; with `filters`, only those the filters of /memory/query select. */
  async list(scope: EndUserScope, options: { limit: number; offset?: number; newestFirst?: boolean; filters?: QueryFilters }): Promise<{ memories: Memory[]; total: number }> {
    const base = options.filters
      ? this.filtered(scope, options.filters, this.deps.clock.now())
      : this.scoped(this.deps.db, scope).where('retention_status', '=', 'active').where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.deps.clock.now())]));
    const totalRow = await base.clearSelect().select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    let q = base.orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (options.limit > 0) q = q.limit(options.limit);
    if (options.offset) q = q.offset(options.offset);
    const rows = await q.execute();
    return { memories: await Promise.all(rows.map((r) => this.decrypt(scope, r))), total: Number(totalRow?.n ?? 0) };
  }

  /**
   * Keyset pagination over the searchable memories, newest first: the cursor is the last row's
   * (created_at in epoch microseconds, id), so pages stay stable while memories are added or deleted.
   */
  async listPage(scope: EndUserScope, options: { limit: number; cursor?: PageCursor }): Promise<{ memories: Memory[]; next: PageCursor | null }> {
    const now = this.deps.clock.now();
    let q = this.scoped(this.deps.db, scope)
      .select(sql<string>`(extract(epoch from created_at) * 1000000)::bigint::text`.as('created_us'))
      .where('retention_status', '=', 'active')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
    if (options.cursor) {
      q = q.where(sql<boolean>`(created_at, id) < (timestamptz 'epoch' + ${options.cursor.createdUs}::bigint * interval '1 microsecond', ${options.cursor.id}::bigint)`);
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit + 1).execute();
    const page = rows.slice(0, options.limit);
    const keys = page.length ? await this.deps.tenantKeys.forTenant(scope.tenantId) : undefined;
    const memories = await Promise.all(page.map((r) => this.decrypt(scope, r, keys)));
    const last = page[page.length - 1];
    return { memories, next: rows.length > options.limit && last ? { createdUs: last.created_us, id: Number(last.id) } : null };
  }

  /**
   * Exact-phrase search over encrypted text: the blind tokens of the phrases narrow the candidates in the
   * database (every term must be present), then the newest `lexicalScanLimit` candidates are decrypted and
   * kept when they contain every phrase (case and spacing ignored). Newest first.
   */
  async phraseSearch(scope: EndUserScope, phrases: string[], filters: QueryFilters, k: number): Promise<{ memories: Memory[]; scanned: number }> {
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const tokens = blindTokens(keys.lexicalKey, [...new Set(phrases.flatMap((p) => lexicalTerms(p)))]);
    let q = this.filtered(scope, filters, this.deps.clock.now());
    if (tokens.length) q = q.where(sql<boolean>`lexical_tokens @> ${tokens}::text[]`);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(this.deps.lexicalScanLimit).execute();
    const squash = (t: string) => t.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
    const needles = phrases.map(squash);
    const memories: Memory[] = [];
    for (const row of rows) {
      if (memories.length >= k) break;
      const memory = await this.decrypt(scope, row, keys);
      const haystack = squash(memory.text);
      if (needles.every((n) => haystack.includes(n))) memories.push(memory);
    }
    return { memories, scanned: rows.length };
  }

  /** Everything the end user owns, in every state, for export. */
  async exportAll(scope: EndUserScope): Promise<Memory[]> {
    const rows = await this.scoped(this.deps.db, scope).orderBy('id').execute();
    return Promise.all(rows.map((r) => this.decrypt(scope, r)));
  }

  /**
   * Hybrid recall: cosine similarity from the vector index blended with blind-token lexical overlap,
   * then recency and importance by the caller's weights. If the embedder or index fails, ranking is
   * lexical over the bounded recent rows and `degraded` says so.
   */
  async query(scope: EndUserScope, input: QueryInput, audit?: ReadAudit): Promise<QueryResult> {
    if (!(await this.deps.usage.allow(scope.tenantId, 'queries'))) return { memories: [], degraded: false, quotaExhausted: true };
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    const { ranked, degraded } = await this.rankFor(scope, input, keys, now);
    const rows = await this.recordQuery(scope, input.filters ?? {}, ranked.map((r) => r.id), now, audit);
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const memories: ScoredMemory[] = [];
    for (const r of ranked) {
      const row = byId.get(r.id);
      if (!row) continue; // deleted or expired since it was ranked (or cached)
      memories.push({ ...(await this.decrypt(scope, row, keys)), score: r.score, scoreParts: r.parts });
    }
    await this.emitQueried(scope, memories, degraded);
    return { memories, degraded, quotaExhausted: false };
  }

  /**
   * `memory.queried` is emitted only when the tenant has an active webhook subscribed to it (matching the
   * project), so queries of everyone else write no outbox row. The subscription check is cached briefly.
   */
  private async emitQueried(scope: EndUserScope, memories: ScoredMemory[], degraded: boolean): Promise<void> {
    const key = `whsub:${scope.tenantId}:${scope.projectId ?? '-'}:memory.queried`;
    let subscribed = await this.deps.cache.get<boolean>(key);
    if (subscribed === undefined) {
      const row = await this.deps.db
        .selectFrom('webhooks')
        .select('id')
        .where('tenant_id', '=', scope.tenantId)
        .where('status', '=', 'active')
        .where(sql<boolean>`events @> ${JSON.stringify(['memory.queried'])}::jsonb`)
        .where((eb) => eb.or([eb('project_id', 'is', null), ...(scope.projectId ? [eb('project_id', '=', scope.projectId)] : [])]))
        .limit(1)
        .executeTakeFirst();
      subscribed = row !== undefined;
      await this.deps.cache.set(key, subscribed, Math.min(this.deps.cacheTtlSeconds, 60));
    }
    if (!subscribed) return;
    const task = this.webhookTask(scope, 'memory.queried', { memory_ids: memories.map((m) => m.id), count: memories.length, degraded });
    await this.deps.db.transaction().execute((trx) => this.deps.outbox.enqueue(trx, [task]));
    await this.deps.outbox.relay([task.id]);
  }

  /**
   * Candidates and their scores for a query: vector hits fused with blind-token lexical matches, ranked
   * by rankCandidates. Only the ranking signals are read here (the ranked rows are read by recordQuery).
   * When the vector store lives in this database, search, lexical leg and filters are one statement.
   * The ranking is cached per user generation.
   */
  private async rankFor(scope: EndUserScope, input: QueryInput, keys: TenantKeys, now: Date): Promise<{ ranked: Ranked[]; degraded: boolean }> {
    const filters = input.filters ?? {};
    const k = input.k;
    const cacheKey = await this.queryCacheKey(scope, input);
    const cached = await this.deps.cache.get<Ranked[]>(cacheKey);
    if (cached) return { ranked: cached, degraded: false };

    const candidateCount = Math.min(Math.max(k * 4, 40), 400);
    const lexicalLimit = Math.min(this.deps.lexicalScanLimit, candidateCount);
    const tokens = blindTokens(keys.lexicalKey, lexicalTerms(input.query));
    let degraded = false;
    let candidates: Candidate[];
    try {
      const vector = await this.embedQuery(scope, input.query);
      const namespace = namespaceForUser(scope.userId);
      const search = { k: candidateCount, filter: this.vectorFilter(scope, filters) };
      if (this.deps.vectors.queryJoined) {
        candidates = await this.withTimeout(this.deps.vectors.queryJoined(namespace, vector, search, (hits) => this.candidatesSql(scope, filters, now, tokens, lexicalLimit, hits)), this.deps.embedBudgetMs, 'vector-store');
      } else {
        const scores = new Map<number, number>();
        // ids and scores come from the store; the rows (and the filters the store cannot apply) from the database
        const hits = await this.withTimeout(this.deps.vectors.query(namespace, vector, search), this.deps.embedBudgetMs, 'vector-store');
        for (const h of hits) scores.set(h.memoryId, h.score);
        candidates = (await this.lexicalCandidates(scope, filters, now, tokens, [...scores.keys()], lexicalLimit)).map((c) => ({ ...c, score: scores.get(Number(c.id)) ?? null }));
      }
    } catch (err) {
      if (!(err instanceof DependencyError)) throw err;
      degraded = true;
      candidates = tokens.length ? await this.lexicalCandidates(scope, filters, now, tokens, [], lexicalLimit) : [];
    }
    if (degraded && !candidates.some((c) => Number(c.overlap) > 0)) {
      // No term overlaps: still answer with the most recent memories, as the bounded fallback scan.
      candidates = await this.filtered(scope, filters, now).clearSelect().select(['id', 'created_at', 'importance', sql<number>`0`.as('overlap'), sql<null>`null`.as('score')])
        .orderBy('created_at', 'desc').limit(Math.min(k, this.deps.lexicalScanLimit)).execute();
    }
    const ranked = rankCandidates(
      candidates.map((c) => ({ id: Number(c.id), semantic: c.score === null ? undefined : Number(c.score), lexical: tokens.length ? Number(c.overlap ?? 0) / tokens.length : 0, createdAt: new Date(c.created_at), importance: Number(c.importance) })),
      { weights: input.weights, degraded, now, k },
    );
    if (!degraded) await this.deps.cache.set(cacheKey, ranked, this.deps.cacheTtlSeconds);
    return { ranked, degraded };
  }

  /**
   * The candidates of one query in one statement: the store's vector hits (`hits`), plus the
   * `lexicalLimit` other searchable memories with the most query tokens, each with its ranking signals.
   * The searchable filters apply to both legs (the store filters only what its metadata holds).
   */
  private candidatesSql(scope: EndUserScope, filters: QueryFilters, now: Date, tokens: string[], lexicalLimit: number, hits: RawBuilder<VectorHitRow>): RawBuilder<Candidate> {
    const lexical = tokens.length
      ? this.filtered(scope, filters, now).clearSelect().select('id')
        .where(sql<boolean>`lexical_tokens && ${tokens}::text[]`)
        .where(sql<boolean>`id not in (select memory_id from vector_hits)`)
        .orderBy(overlapSql(tokens), 'desc').orderBy('created_at', 'desc').limit(lexicalLimit)
      : undefined;
    // The candidate ids drive the read (an index probe), whatever the planner knows about the table;
    // scores are looked up in one aggregated row rather than by a scan of the hits per candidate.
    const candidateIds = sql`array(select memory_id from vector_hits${lexical ? sql` union all select id from lexical_hits` : sql``})`;
    const rows = this.filtered(scope, filters, now).clearSelect()
      .select(['id', 'created_at', 'importance', overlapSql(tokens).as('overlap'), sql<number | null>`(select scores[array_position(ids, memories.id)] from vector_scores)`.as('score')])
      .where(sql<boolean>`id = any(${candidateIds})`);
    return sql<Candidate>`with vector_hits as materialized (${hits}),
      vector_scores as materialized (select array_agg(memory_id) as ids, array_agg(score) as scores from vector_hits)${lexical ? sql`,
      lexical_hits as materialized (${lexical})` : sql``}
      ${rows}`;
  }

  /** Vector candidates (given) and the other searchable memories with the most query tokens: one statement. */
  private lexicalCandidates(scope: EndUserScope, filters: QueryFilters, now: Date, tokens: string[], vectorIds: number[], lexicalLimit: number): Promise<Candidate[]> {
    if (!vectorIds.length && !tokens.length) return Promise.resolve([]);
    return this.filtered(scope, filters, now).clearSelect()
      .select(['id', 'created_at', 'importance', overlapSql(tokens).as('overlap'), sql<null>`null`.as('score')])
      .where((eb) => eb.or([
        ...(vectorIds.length ? [eb('id', 'in', vectorIds)] : []),
        ...(tokens.length ? [sql<boolean>`lexical_tokens && ${tokens}::text[]`] : []),
      ]))
      .orderBy(sql`(id = any(${vectorIds}::bigint[]))`, 'desc')
      .orderBy('overlap', 'desc')
      .orderBy('created_at', 'desc')
      .limit(vectorIds.length + lexicalLimit)
      .execute();
  }

  /** The query's vector; repeated query texts of a tenant are embedded once (a small per-process LRU). */
  private async embedQuery(scope: Pick<EndUserScope, 'tenantId'>, text: string): Promise<number[]> {
    // Keyed by tenant too: a shared entry would let one tenant time another's queries.
    const key = `${scope.tenantId}\n${this.deps.embedder.model}\n${text}`;
    const hit = this.queryVectors.get(key);
    if (hit) {
      this.queryVectors.delete(key);
      this.queryVectors.set(key, hit);
      return hit;
    }
    const [vector] = await this.withTimeout(this.deps.embedder.embed([text]), this.deps.embedBudgetMs, 'embedder');
    this.queryVectors.set(key, vector);
    if (this.queryVectors.size > QUERY_VECTOR_CACHE_SIZE) this.queryVectors.delete(this.queryVectors.keys().next().value as string);
    return vector;
  }

  /**
   * Why a memory matches a query: the same signals and the same scoring function as /memory/query,
   * computed for this one memory, plus whether the query's filters admit it and its rank among the top 100.
   * Reads only; no quota is used and last_accessed_at is not touched.
   */
  async explain(scope: EndUserScope, input: { query: string; memoryId: number; weights?: QueryInput['weights']; filters?: QueryFilters }): Promise<Explanation> {
    const id = input.memoryId;
    const row = await this.scoped(this.deps.db, scope).where('id', '=', id).where('retention_status', 'in', READABLE_STATUSES).executeTakeFirst();
    if (!row) throw notFound('Memory not found');
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    const filters = input.filters ?? {};
    let semantic = 0;
    let indexed = true;
    let degraded = false;
    try {
      const [vector] = await this.withTimeout(this.deps.embedder.embed([input.query]), this.deps.embedBudgetMs, 'embedder');
      const hits = await this.withTimeout(this.deps.vectors.query(namespaceForUser(scope.userId), vector, { k: 1, filter: { memoryIds: [id] } }), this.deps.embedBudgetMs, 'vector-store');
      if (hits[0]?.memoryId === id) semantic = hits[0].score;
      else indexed = false;
    } catch (err) {
      if (!(err instanceof DependencyError)) throw err;
      degraded = true;
    }
    const tokens = blindTokens(keys.lexicalKey, lexicalTerms(input.query));
    const overlap = tokens.length
      ? await this.scoped(this.deps.db, scope).clearSelect().select(overlapSql(tokens).as('overlap')).where('id', '=', id).executeTakeFirst()
      : undefined;
    const lexical = tokens.length ? Number(overlap?.overlap ?? 0) / tokens.length : 0;
    const breakdown = scoreMemory({ semantic, lexical, createdAt: new Date(row.created_at), importance: Number(row.importance), now, degraded }, resolveWeights(input.weights));

    const admitted = await this.filtered(scope, filters, now).where('id', '=', id).executeTakeFirst();
    const reasons: string[] = [];
    if (!admitted) {
      if (row.retention_status !== 'active') reasons.push(`retention_status is ${row.retention_status}; only active memories are searchable`);
      if (row.expires_at && new Date(row.expires_at) <= now) reasons.push('expired (expires_at has passed)');
      if (row.is_summary && !filters.include_summaries) reasons.push('summary memories are excluded unless filters.include_summaries is true');
      if (reasons.length === 0) reasons.push('excluded by the filters or the project scope');
    }
    let rank: number | null = null;
    if (admitted) {
      const { ranked } = await this.rankFor(scope, { query: input.query, k: 100, filters, weights: input.weights }, keys, now);
      const at = ranked.findIndex((r) => r.id === id);
      rank = at >= 0 ? at + 1 : null;
    }
    return { memoryId: id, breakdown, eligible: Boolean(admitted), reasons, rank, indexed, degraded };
  }

  /**
   * One statement after ranking: reads the ranked rows that are still searchable while touching their
   * last_accessed_at, counts the query, and writes the request's audit row when the caller hands it over.
   */
  private async recordQuery(scope: EndUserScope, filters: QueryFilters, ids: number[], now: Date, audit?: ReadAudit): Promise<MemoryColumnsRow[]> {
    let statement = this.deps.db.with('counted', (db) =>
      db.insertInto('usage_counters')
        .values({ tenant_id: scope.tenantId, period: periodOf(now), adds: 0, queries: 1 })
        .onConflict((oc) => oc.columns(['tenant_id', 'period']).doUpdateSet({ queries: sql`usage_counters.queries + 1` })));
    if (audit) {
      statement = statement.with('audited', (db) => db.insertInto('audit_logs').values(auditValues({
        ...auditBase(audit.meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal),
        eventType: audit.eventType, category: 'data', resourceType: 'memory', resourceId: null, action: 'query', status: 'success', statusCode: 200,
        payload: { route: audit.route },
      }))) as unknown as typeof statement;
    }
    const rows = await statement.updateTable('memories').set({ last_accessed_at: now })
      .where((eb) => this.searchable(eb, scope, filters, now))
      .where(sql<boolean>`id = any(${ids}::bigint[])`)
      .returning(MEMORY_COLUMNS)
      .execute();
    if (audit) audit.meta.audit.written = true;
    return rows;
  }

  // ------------------------------------------------------------------ used by workers

  /** Embeds and indexes memories still pending; idempotent (ready rows are skipped). */
  async embedPending(scope: { tenantId: string; userId: number }, memoryIds: number[]): Promise<number> {
    if (memoryIds.length === 0) return 0;
    const rows = await this.deps.db.selectFrom('memories').select(EMBEDDABLE_COLUMNS).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', memoryIds).execute();
    return this.embedRows(rows);
  }

  /**
   * Embeds rows of any end users and tenants in one embedder call, one vector upsert (all their
   * namespaces) and one status update per tenant; returns how many rows were embedded.
   */
  async embedRows(rows: EmbeddableRow[]): Promise<number> {
    return this.writeEmbeddings(await this.computeEmbeddings(rows));
  }

  /** The CPU half of `embedRows`: decrypts each row's text (AAD of its own end user) and embeds them. */
  async computeEmbeddings(rows: EmbeddableRow[]): Promise<ComputedEmbeddings> {
    if (rows.length === 0) return { rows, vectors: [] };
    const keys = new Map<string, TenantKeys>();
    for (const tenantId of new Set(rows.map((r) => r.tenant_id))) keys.set(tenantId, await this.deps.tenantKeys.forTenant(tenantId));
    const texts = rows.map((r) => openText(keys.get(r.tenant_id)!.dataKey, r.text_ciphertext, aadFor({ tenantId: r.tenant_id, userId: r.user_id })));
    return { rows, vectors: await this.deps.embedder.embed(texts) };
  }

  /** The I/O half of `embedRows`: vectors into each row's end-user namespace, then the rows marked ready. */
  async writeEmbeddings({ rows, vectors }: ComputedEmbeddings): Promise<number> {
    if (rows.length === 0) return 0;
    const byUser = new Map<number, VectorRecord[]>();
    rows.forEach((r, i) => {
      let records = byUser.get(r.user_id);
      if (!records) byUser.set(r.user_id, (records = []));
      records.push({ memoryId: Number(r.id), vector: vectors[i], metadata: this.vectorMetadata(r) });
    });
    await this.deps.vectors.upsertMany([...byUser].map(([userId, records]) => ({ namespace: namespaceForUser(userId), records })));
    for (const tenantId of new Set(rows.map((r) => r.tenant_id))) {
      const ids = rows.filter((r) => r.tenant_id === tenantId).map((r) => r.id);
      await this.deps.db.updateTable('memories').set({ embedding_status: 'ready', embedding_model: this.deps.embedder.model }).where('tenant_id', '=', tenantId).where('id', 'in', ids).execute();
    }
    return rows.length;
  }

  /** Brings a vector's metadata in line with its row (after a non-text update). */
  async syncVectorMetadata(scope: { tenantId: string; userId: number }, memoryId: number): Promise<void> {
    const row = await this.deps.db.selectFrom('memories').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', '=', memoryId).executeTakeFirst();
    if (row) await this.deps.vectors.updateMetadata(namespaceForUser(scope.userId), memoryId, this.vectorMetadata(row));
  }

  async deleteVectors(scope: { userId: number }, memoryIds: number[]): Promise<void> {
    await this.deps.vectors.delete(namespaceForUser(scope.userId), memoryIds);
  }

  // ------------------------------------------------------------------ internals

  private prepare(scope: EndUserScope, keys: TenantKeys, input: AddInput) {
    const now = this.deps.clock.now();
    const extraction = extract(input.text);
    const aad = aadFor(scope);
    const contentHash = hmacHex(keys.lexicalKey, `content:${normalizeForHash(input.text)}`);
    return {
      contentHash,
      summary: extraction.summary,
      values: {
        tenant_id: scope.tenantId,
        project_id: scope.projectId,
        user_id: scope.userId,
        environment: scope.environment,
        text_ciphertext: seal(keys.dataKey, input.text, aad),
        content_hash: contentHash,
        lexical_tokens: blindTokens(keys.lexicalKey, lexicalTerms(input.text)),
        summary_ciphertext: extraction.summary ? seal(keys.dataKey, extraction.summary, aad) : null,
        key_points: JSON.stringify(extraction.keyPoints),
        tags: [...new Set(input.tags ?? [])],
        source: input.source ?? null,
        event_type: input.event_type ?? null,
        memory_type: input.memory_type ?? extraction.memoryType,
        importance: input.importance ?? 0.5,
        quality_score: extraction.qualityScore,
        is_summary: input.is_summary ?? false,
        metadata: JSON.stringify(input.metadata ?? {}),
        idempotency_key: input.idempotency_key ?? null,
        embedding_status: 'pending',
        expires_at: input.ttl_minutes ? new Date(now.getTime() + input.ttl_minutes * 60_000) : null,
        created_at: now,
        updated_at: now,
        last_accessed_at: now,
      },
    };
  }

  private async afterInsert(trx: Kysely<Database>, scope: EndUserScope, row: MemoryRow, meta: AuditMeta, embedTaskId: string, options: { auditEvent?: string | null; webhookEvent?: string | null; links?: AddInput['links']; relayAfterCommit?: string[] }) {
    const id = Number(row.id);
    await trx.insertInto('memory_events').values({ tenant_id: scope.tenantId, memory_id: id, event_type: 'created', data: JSON.stringify({ source: row.source }) }).execute();
    if (options.links?.to.length) {
      // Only memories of the same end user can be linked: the targets are selected through the scope.
      await trx
        .insertInto('memory_links')
        .columns(['tenant_id', 'user_id', 'from_memory_id', 'to_memory_id', 'kind'])
        .expression((eb) => eb.selectFrom('memories').select([eb.val(scope.tenantId).as('tenant_id'), eb.val(scope.userId).as('user_id'), eb.val(id).as('from_memory_id'), 'id', eb.val(options.links!.kind).as('kind')])
          .where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', options.links!.to))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    await this.adjustProjectCounts(trx, scope.tenantId, [row.project_id], 1);
    await this.deps.usage.record(trx, scope.tenantId, 'adds');
    const tasks = [this.embedTask(scope, embedTaskId, 'embed', id)];
    const webhookEvent = options.webhookEvent === undefined ? 'memory.created' : options.webhookEvent;
    if (webhookEvent) {
      const task = this.webhookTask(scope, webhookEvent, { id, source: row.source, tags: row.tags, memory_type: row.memory_type });
      tasks.push(task);
      options.relayAfterCommit?.push(task.id);
    }
    await this.deps.outbox.enqueue(trx, tasks);
    if (options.auditEvent !== null) {
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: options.auditEvent ?? 'memory.create', category: 'data', resourceType: 'memory', resourceId: String(id), action: 'create', status: 'success', statusCode: 201 });
      meta.audit.written = true;
    }
  }

  /** An embedding-family task for one memory (`embed`, `sync-metadata`). */
  embedTask(scope: Pick<EndUserScope, 'tenantId' | 'userId'>, id: string, type: string, memoryId: number | number[]): Task {
    return { id, family: 'embedding', tenantId: scope.tenantId, type, payload: { userId: scope.userId, memoryIds: Array.isArray(memoryId) ? memoryId : [memoryId] }, createdAt: this.deps.clock.now().toISOString() };
  }

  /** A webhook fan-out task for one event of this end user (delivered after commit by the webhook worker). */
  webhookTask(scope: EndUserScope, event: string, data: Record<string, unknown>): Task {
    const family: TaskFamily = 'webhook-delivery';
    return {
      id: randomUUID(), family, tenantId: scope.tenantId, type: 'fanout',
      payload: { event, projectId: scope.projectId, endUserId: scope.endUserExternalId, data },
      createdAt: this.deps.clock.now().toISOString(),
    };
  }

  private async indexAfterCommit(scope: EndUserScope, row: MemoryRow, vector: number[] | null, taskId: string): Promise<boolean> {
    if (vector) {
      try {
        await this.withTimeout(this.deps.vectors.upsert(namespaceForUser(scope.userId), [{ memoryId: Number(row.id), vector, metadata: this.vectorMetadata(row) }]), this.deps.embedBudgetMs, 'vector-store');
        await this.deps.db.updateTable('memories').set({ embedding_status: 'ready', embedding_model: this.deps.embedder.model }).where('tenant_id', '=', scope.tenantId).where('id', '=', Number(row.id)).execute();
        await this.deps.outbox.settle([taskId]);
        return true;
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
      }
    }
    await this.deps.outbox.relay([taskId]);
    return false;
  }

  private async indexManyAfterCommit(scope: EndUserScope, items: Array<{ row: MemoryRow; taskId: string; vector: number[] | null }>) {
    const ready = items.filter((i) => i.vector);
    const rest = items.filter((i) => !i.vector);
    if (ready.length) {
      try {
        await this.withTimeout(this.deps.vectors.upsert(namespaceForUser(scope.userId), ready.map((i) => ({ memoryId: Number(i.row.id), vector: i.vector as number[], metadata: this.vectorMetadata(i.row) }))), this.deps.embedBudgetMs, 'vector-store');
        await this.deps.db.updateTable('memories').set({ embedding_status: 'ready', embedding_model: this.deps.embedder.model }).where('tenant_id', '=', scope.tenantId).where('id', 'in', ready.map((i) => Number(i.row.id))).execute();
        await this.deps.outbox.settle(ready.map((i) => i.taskId));
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        rest.push(...ready);
      }
    }
    if (rest.length) await this.deps.outbox.relay(rest.map((i) => i.taskId));
  }

  private async embedWithinBudget(text: string): Promise<number[] | null> {
    const vectors = await this.embedManyWithinBudget([text]);
    return vectors?.[0] ?? null;
  }

  private async embedManyWithinBudget(texts: string[]): Promise<number[][] | null> {
    if (texts.length === 0) return [];
    try {
      return await this.withTimeout(this.deps.embedder.embed(texts), this.deps.embedBudgetMs, 'embedder');
    } catch (err) {
      if (err instanceof DependencyError) return null;
      throw err;
    }
  }

  private async withTimeout<T>(promise: Promise<T>, ms: number, dependency: 'embedder' | 'vector-store'): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DependencyError(dependency, `${dependency} exceeded ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([promise.catch((err) => {
        throw err instanceof DependencyError ? err : new DependencyError(dependency, `${dependency} failed`, { cause: err });
      }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private vectorMetadata(row: Pick<MemoryRow, 'tier' | 'retention_status' | 'environment' | 'project_id' | 'tags' | 'source'>): VectorMetadata {
    return {
      tier: row.tier as VectorMetadata['tier'],
      retentionStatus: row.retention_status as VectorMetadata['retentionStatus'],
      environment: row.environment,
      projectId: row.project_id,
      tags: row.tags ?? [],
      source: row.source,
    };
  }

  private vectorFilter(scope: EndUserScope, f: QueryFilters): VectorFilter {
    const sources = f.sources ?? (f.source ? [f.source] : undefined);
    return {
      retentionStatus: ['active'],
      ...(scope.projectId ? { projectId: scope.projectId } : {}),
      ...(f.tags?.length ? { tagsAny: f.tags } : {}),
      ...(sources?.length ? { sources } : {}),
      ...(f.tier ? { tiers: [f.tier] } : {}),
    };
  }

  /** Every memory read starts here: tenant, end user and (when resolved) project come from the scope. */
  private scoped(db: Kysely<Database>, scope: EndUserScope) {
    let q = db.selectFrom('memories').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId);
    if (scope.projectId) q = q.where('project_id', '=', scope.projectId);
    return q;
  }

  private filtered(scope: EndUserScope, f: QueryFilters, now: Date) {
    return this.deps.db.selectFrom('memories').where((eb) => this.searchable(eb, scope, f, now)).selectAll();
  }

  /** What /memory/query may return for this end user: active, unexpired, in scope and admitted by the filters. */
  private searchable(eb: ExpressionBuilder<Database, 'memories'>, scope: EndUserScope, f: QueryFilters, now: Date): Expression<SqlBool> {
    const conditions: Array<Expression<SqlBool>> = [
      eb('tenant_id', '=', scope.tenantId),
      eb('user_id', '=', scope.userId),
      eb('retention_status', '=', 'active'),
      eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]),
    ];
    if (scope.projectId) conditions.push(eb('project_id', '=', scope.projectId));
    if (f.tags?.length) conditions.push(sql<boolean>`tags && ${f.tags}::text[]`);
    const sources = f.sources ?? (f.source ? [f.source] : undefined);
    if (sources?.length) conditions.push(eb('source', 'in', sources));
    if (f.event_type) conditions.push(eb('event_type', '=', f.event_type));
    if (f.memory_type) conditions.push(eb('memory_type', '=', f.memory_type));
    if (f.tier) conditions.push(eb('tier', '=', f.tier));
    if (f.since) conditions.push(eb('created_at', '>=', new Date(f.since)));
    if (f.until) conditions.push(eb('created_at', '<=', new Date(f.until)));
    if (!f.include_summaries) conditions.push(eb('is_summary', '=', false));
    return eb.and(conditions);
  }

  private async decrypt(scope: EndUserScope, row: MemoryColumnsRow, keys?: TenantKeys): Promise<Memory> {
    const k = keys ?? (await this.deps.tenantKeys.forTenant(scope.tenantId));
    const aad = aadFor({ tenantId: row.tenant_id, userId: row.user_id });
    const text = openText(k.dataKey, row.text_ciphertext, aad);
    const summary = row.summary_ciphertext ? openText(k.dataKey, row.summary_ciphertext, aad) : null;
    return rowToMemory(row, text, summary, scope.endUserExternalId);
  }

  private async findDuplicate(scope: EndUserScope, contentHash: string): Promise<number | undefined> {
    const row = await this.deps.db.selectFrom('memories').select('id').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('content_hash', '=', contentHash).where('deleted_at', 'is', null).where('is_summary', '=', false).orderBy('id').limit(1).executeTakeFirst();
    return row ? Number(row.id) : undefined;
  }

  private async findByIdempotencyKey(scope: EndUserScope, key: string): Promise<number | undefined> {
    const row = await this.deps.db.selectFrom('memories').select('id').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('idempotency_key', '=', key).executeTakeFirst();
    return row ? Number(row.id) : undefined;
  }

  private async adjustProjectCounts(trx: Kysely<Database>, tenantId: string, projectIds: Array<string | null>, delta: number) {
    const counts = new Map<string, number>();
    for (const p of projectIds) if (p) counts.set(p, (counts.get(p) ?? 0) + delta);
    for (const [projectId, n] of counts) {
      await trx.updateTable('projects').set({ memory_count: sql`greatest(memory_count + ${n}, 0)` }).where('tenant_id', '=', tenantId).where('id', '=', projectId).execute();
    }
  }

  /** Query results are cached under a per-user generation that every write bumps. */
  private async queryCacheKey(scope: EndUserScope, input: QueryInput): Promise<string> {
    const gen = await this.deps.cache.get<number>(`qgen:${scope.tenantId}:${scope.userId}`);
    return `q:${scope.tenantId}:${scope.userId}:${gen ?? 0}:${sha256Hex(JSON.stringify([scope.projectId, input]))}`;
  }

  async invalidateQueries(scope: Pick<EndUserScope, 'tenantId' | 'userId'>) {
    await this.deps.cache.incr(`qgen:${scope.tenantId}:${scope.userId}`, 86_400);
  }

  /** Workers (summarization, intelligence): the plaintext of rows of one end user, in the order given. */
  async openTexts(scope: { tenantId: string; userId: number }, rows: Array<Pick<MemoryRow, 'text_ciphertext'>>): Promise<string[]> {
    if (rows.length === 0) return [];
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    return rows.map((r) => openText(keys.dataKey, r.text_ciphertext, aadFor(scope)));
  }
}

export { AppError };
