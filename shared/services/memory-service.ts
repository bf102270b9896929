import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database, MemoryRow } from '../db/schema.ts';
import { AppError, conflict, DependencyError, notFound } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import type { Task, TaskFamily } from '../ports/queue.ts';
import { namespaceForUser, type VectorFilter, type VectorMetadata, type VectorStore } from '../ports/vector-store.ts';
import { openText, seal } from '../crypto/aead.ts';
import { hmacHex, sha256Hex } from '../crypto/hashing.ts';
import { blindTokens, lexicalTerms } from '../crypto/lexical.ts';
import type { TenantKeyService, TenantKeys } from '../crypto/tenant-keys.ts';
import { writeAudit } from './audit.ts';
import { extract } from './extraction.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import { rowToMemory, type Memory, type ScoredMemory } from './memory-model.ts';
import type { EndUserScope } from './scope.ts';
import type { UsageService } from './usage-service.ts';

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

export interface QueryResult {
  memories: ScoredMemory[];
  /** true when the semantic path failed and ranking is lexical only */
  degraded: boolean;
  quotaExhausted: boolean;
}

export const DEFAULT_WEIGHTS = { semantic: 0.85, recency: 0.1, importance: 0.05 } as const;
/** inside "semantic": how much the blind-token lexical overlap adds to the vector similarity */
const LEXICAL_SHARE = 0.25;
const RECENCY_HALF_LIFE_DAYS = 30;

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
 * The scoring of recall: relevance = 0.75·cosine + 0.25·lexical overlap (lexical only when the
 * semantic path is down), then score = (w_s·relevance + w_r·recency + w_i·importance) / Σw, where
 * recency halves every 30 days. Returns the top k, best first.
 */
export function rankCandidates(candidates: RankInput[], options: { weights?: QueryInput['weights']; degraded: boolean; now: Date; k: number }): Ranked[] {
  const weights = { ...DEFAULT_WEIGHTS, ...(options.weights ?? {}) };
  const total = weights.semantic + weights.recency + weights.importance || 1;
  return candidates
    .map((c) => {
      const sem = Math.max(0, c.semantic ?? 0);
      const relevance = options.degraded ? c.lexical : (1 - LEXICAL_SHARE) * sem + LEXICAL_SHARE * c.lexical;
      const ageDays = Math.max(0, (options.now.getTime() - c.createdAt.getTime()) / 86_400_000);
      const recency = Math.pow(0.5, ageDays / RECENCY_HALF_LIFE_DAYS);
      const score = (weights.semantic * relevance + weights.recency * recency + weights.importance * c.importance) / total;
      return { id: c.id, score, parts: { semantic: sem, lexical: c.lexical, recency, importance: c.importance } };
    })
    .sort((a, b) => b.score - a.score || b.id - a.id)
    .slice(0, options.k);
}

const normalizeForHash = (text: string) => text.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
const aadFor = (scope: { tenantId: string; userId: number }) => `memorysync:v1:${scope.tenantId}:${scope.userId}`;

/**
 * The memory core: the write path (validate → quota → dedupe → encrypt → one transaction with event,
 * audit and outbox rows → embed and index within a budget) and hybrid recall over vectors and blind
 * lexical tokens. Every query is built from the EndUserScope; nothing here reads by id alone.
 */
export class MemoryService {
  constructor(private readonly deps: MemoryServiceDeps) {}

  // ------------------------------------------------------------------ writes

  async add(scope: EndUserScope, input: AddInput, meta: AuditMeta, options: { auditEvent?: string; webhookEvent?: string | null } = {}): Promise<AddOutcome> {
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
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('memories')
        .values({ ...prepared.values, dedupe_key: dedupe ? prepared.contentHash : null })
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!inserted) return undefined; // a racing twin won the dedupe or idempotency index
      await this.afterInsert(trx, scope, inserted, meta, embedTaskId, options);
      return inserted;
    });
    if (!row) {
      const existing = (input.idempotency_key && (await this.findByIdempotencyKey(scope, input.idempotency_key))) || (await this.findDuplicate(scope, prepared.contentHash));
      if (existing) return { status: 'duplicate', existingId: existing };
      throw conflict('Memory could not be stored because of a concurrent write; retry');
    }
    const indexed = await this.indexAfterCommit(scope, row, vector, embedTaskId);
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
          await this.deps.outbox.enqueue(trx, [this.webhookTask(scope, 'memory.batch_created', { memory_ids: inserted.map((x) => Number(x.row.id)), count: inserted.length })]);
        }
        await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.bulk_create', category: 'data', resourceType: 'memory', resourceId: null, action: 'create', status: 'success', statusCode: 207, payload: { created: inserted.length, submitted: items.length } });
        meta.audit.written = true;
      });
      await this.indexManyAfterCommit(scope, inserted);
      await this.invalidateQueries(scope);
    } else {
      meta.audit.written = false;
    }
    results.sort((a, b) => a.index - b.index);
    const count = (s: string) => results.filter((r) => r.status === s).length;
    return { total: items.length, created: count('created'), skipped: count('skipped'), rejected: count('rejected'), results };
  }

  async get(scope: EndUserScope, id: number): Promise<Memory | undefined> {
    const row = await this.scoped(this.deps.db, scope).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return this.decrypt(scope, row);
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
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('memories').set(set).where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', '=', id).returningAll().executeTakeFirst();
      if (!updated) throw notFound('Memory not found');
      await trx.insertInto('memory_events').values({ tenant_id: scope.tenantId, memory_id: id, event_type: 'updated', data: JSON.stringify({ fields: Object.keys(patch) }) }).execute();
      await this.deps.outbox.enqueue(trx, [
        this.embedTask(scope, taskId, textChanged ? 'embed' : 'sync-metadata', id),
        this.webhookTask(scope, 'memory.updated', { id, fields: Object.keys(patch) }),
      ]);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: 'memory.update', category: 'data', resourceType: 'memory', resourceId: String(id), action: 'update', status: 'success', statusCode: 200, payload: { fields: Object.keys(patch) } });
      meta.audit.written = true;
      return updated;
    });
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
  async delete(scope: EndUserScope, ids: number[], meta: AuditMeta, auditEvent = 'memory.delete'): Promise<number[]> {
    if (ids.length === 0) return [];
    const taskId = randomUUID();
    const deleted = await this.deps.db.transaction().execute(async (trx) => {
      // A project-scoped caller (X-Project-ID or a project-locked key) deletes only inside its project.
      let doomed = trx.deleteFrom('memories').where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', ids);
      if (scope.projectId) doomed = doomed.where('project_id', '=', scope.projectId);
      const rows = await doomed.returning(['id', 'project_id']).execute();
      const deletedIds = rows.map((r) => Number(r.id));
      if (deletedIds.length) {
        await trx.insertInto('memory_events').values(deletedIds.map((id) => ({ tenant_id: scope.tenantId, memory_id: id, event_type: 'deleted', data: JSON.stringify({}) }))).execute();
        await this.adjustProjectCounts(trx, scope.tenantId, rows.map((r) => r.project_id), -1);
        await this.deps.outbox.enqueue(trx, [
          { id: taskId, family: 'embedding', tenantId: scope.tenantId, type: 'delete-vectors', payload: { userId: scope.userId, memoryIds: deletedIds }, createdAt: this.deps.clock.now().toISOString() },
          this.webhookTask(scope, 'memory.deleted', { ids: deletedIds }),
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
      await this.invalidateQueries(scope);
    }
    return deleted;
  }

  // ------------------------------------------------------------------ reads

  async list(scope: EndUserScope, options: { limit: number; offset?: number; newestFirst?: boolean }): Promise<{ memories: Memory[]; total: number }> {
    const base = this.scoped(this.deps.db, scope).where('retention_status', '=', 'active').where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.deps.clock.now())]));
    const totalRow = await base.clearSelect().select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    let q = base.orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (options.limit > 0) q = q.limit(options.limit);
    if (options.offset) q = q.offset(options.offset);
    const rows = await q.execute();
    return { memories: await Promise.all(rows.map((r) => this.decrypt(scope, r))), total: Number(totalRow?.n ?? 0) };
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
  async query(scope: EndUserScope, input: QueryInput): Promise<QueryResult> {
    if (!(await this.deps.usage.allow(scope.tenantId, 'queries'))) return { memories: [], degraded: false, quotaExhausted: true };
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const now = this.deps.clock.now();
    const filters = input.filters ?? {};
    const k = input.k;
    const cacheKey = await this.queryCacheKey(scope, input);
    let ranked = cacheKey ? await this.deps.cache.get<Array<{ id: number; score: number; parts: ScoredMemory['scoreParts'] }>>(cacheKey) : undefined;
    let degraded = false;

    let rows: Array<MemoryRow & { overlap?: number }> = [];
    if (!ranked) {
      const candidateCount = Math.min(Math.max(k * 4, 40), 400);
      const semantic = new Map<number, number>();
      try {
        const [vector] = await this.withTimeout(this.deps.embedder.embed([input.query]), this.deps.embedBudgetMs, 'embedder');
        const hits = await this.withTimeout(this.deps.vectors.query(namespaceForUser(scope.userId), vector, { k: candidateCount, filter: this.vectorFilter(scope, filters) }), this.deps.embedBudgetMs, 'vector-store');
        for (const h of hits) semantic.set(h.memoryId, h.score);
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        degraded = true;
      }
      // One round trip fetches the vector candidates and the lexical matches (blind-token overlap) together.
      const tokens = blindTokens(keys.lexicalKey, lexicalTerms(input.query));
      const vectorIds = [...semantic.keys()];
      if (vectorIds.length || tokens.length) {
        rows = await this.filtered(scope, filters, now)
          .select(sql<number>`cardinality(array(select unnest(lexical_tokens) intersect select unnest(${tokens}::text[])))`.as('overlap'))
          .where((eb) => eb.or([
            ...(vectorIds.length ? [eb('id', 'in', vectorIds)] : []),
            ...(tokens.length ? [sql<boolean>`lexical_tokens && ${tokens}::text[]`] : []),
          ]))
          .orderBy(sql`(id = any(${vectorIds}::bigint[]))`, 'desc')
          .orderBy('overlap', 'desc')
          .orderBy('created_at', 'desc')
          .limit(vectorIds.length + Math.min(this.deps.lexicalScanLimit, candidateCount))
          .execute();
      }
      if (degraded && !rows.some((r) => Number(r.overlap) > 0)) {
        // No term overlaps: still answer with the most recent memories, as the bounded fallback scan.
        rows = await this.filtered(scope, filters, now).orderBy('created_at', 'desc').limit(Math.min(k, this.deps.lexicalScanLimit)).execute();
      }
      ranked = rankCandidates(
        rows.map((r) => ({ id: Number(r.id), semantic: semantic.get(Number(r.id)), lexical: tokens.length ? Number(r.overlap ?? 0) / tokens.length : 0, createdAt: new Date(r.created_at), importance: Number(r.importance) })),
        { weights: input.weights, degraded, now, k },
      );
      if (cacheKey && !degraded) await this.deps.cache.set(cacheKey, ranked, this.deps.cacheTtlSeconds);
    } else if (ranked.length) {
      rows = await this.filtered(scope, filters, now).where('id', 'in', ranked.map((r) => r.id)).execute();
    }

    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const memories: ScoredMemory[] = [];
    for (const r of ranked) {
      const row = byId.get(r.id);
      if (!row) continue; // deleted or expired since it was cached
      memories.push({ ...(await this.decrypt(scope, row, keys)), score: r.score, scoreParts: r.parts });
    }
    await this.recordQuery(scope, memories.map((m) => m.id), now);
    return { memories, degraded, quotaExhausted: false };
  }

  /** One statement: touch last_accessed_at of what was returned and count the query. */
  private async recordQuery(scope: EndUserScope, ids: number[], now: Date): Promise<void> {
    const period = now.toISOString().slice(0, 7);
    await sql`with touched as (
        update memories set last_accessed_at = ${now}
        where tenant_id = ${scope.tenantId} and user_id = ${scope.userId} and id = any(${ids}::bigint[]) returning 1)
      insert into usage_counters (tenant_id, period, adds, queries) values (${scope.tenantId}, ${period}, 0, 1)
      on conflict (tenant_id, period) do update set queries = usage_counters.queries + 1`.execute(this.deps.db);
  }

  // ------------------------------------------------------------------ used by workers

  /** Embeds and indexes memories still pending; idempotent (ready rows are skipped). */
  async embedPending(scope: { tenantId: string; userId: number }, memoryIds: number[]): Promise<number> {
    const rows = await this.deps.db.selectFrom('memories').selectAll().where('tenant_id', '=', scope.tenantId).where('user_id', '=', scope.userId).where('id', 'in', memoryIds).execute();
    if (rows.length === 0) return 0;
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const texts = rows.map((r) => openText(keys.dataKey, r.text_ciphertext, aadFor(scope)));
    const vectors = await this.deps.embedder.embed(texts);
    await this.deps.vectors.upsert(namespaceForUser(scope.userId), rows.map((r, i) => ({ memoryId: Number(r.id), vector: vectors[i], metadata: this.vectorMetadata(r) })));
    await this.deps.db.updateTable('memories').set({ embedding_status: 'ready', embedding_model: this.deps.embedder.model }).where('tenant_id', '=', scope.tenantId).where('id', 'in', rows.map((r) => r.id)).execute();
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

  private async afterInsert(trx: Kysely<Database>, scope: EndUserScope, row: MemoryRow, meta: AuditMeta, embedTaskId: string, options: { auditEvent?: string | null; webhookEvent?: string | null }) {
    const id = Number(row.id);
    await trx.insertInto('memory_events').values({ tenant_id: scope.tenantId, memory_id: id, event_type: 'created', data: JSON.stringify({ source: row.source }) }).execute();
    await this.adjustProjectCounts(trx, scope.tenantId, [row.project_id], 1);
    await this.deps.usage.record(trx, scope.tenantId, 'adds');
    const tasks = [this.embedTask(scope, embedTaskId, 'embed', id)];
    const webhookEvent = options.webhookEvent === undefined ? 'memory.created' : options.webhookEvent;
    if (webhookEvent) tasks.push(this.webhookTask(scope, webhookEvent, { id, source: row.source, tags: row.tags, memory_type: row.memory_type }));
    await this.deps.outbox.enqueue(trx, tasks);
    if (options.auditEvent !== null) {
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.userId, principal: principalLabel(scope.principal), eventType: options.auditEvent ?? 'memory.create', category: 'data', resourceType: 'memory', resourceId: String(id), action: 'create', status: 'success', statusCode: 201 });
      meta.audit.written = true;
    }
  }

  private embedTask(scope: EndUserScope, id: string, type: string, memoryId: number): Task {
    return { id, family: 'embedding', tenantId: scope.tenantId, type, payload: { userId: scope.userId, memoryIds: [memoryId] }, createdAt: this.deps.clock.now().toISOString() };
  }

  private webhookTask(scope: EndUserScope, event: string, data: Record<string, unknown>): Task {
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

  private vectorMetadata(row: MemoryRow): VectorMetadata {
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
    let q = this.deps.db
      .selectFrom('memories')
      .select(['id'])
      .where('tenant_id', '=', scope.tenantId)
      .where('user_id', '=', scope.userId)
      .where('retention_status', '=', 'active')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
    if (scope.projectId) q = q.where('project_id', '=', scope.projectId);
    if (f.tags?.length) q = q.where(sql<boolean>`tags && ${f.tags}::text[]`);
    const sources = f.sources ?? (f.source ? [f.source] : undefined);
    if (sources?.length) q = q.where('source', 'in', sources);
    if (f.event_type) q = q.where('event_type', '=', f.event_type);
    if (f.memory_type) q = q.where('memory_type', '=', f.memory_type);
    if (f.tier) q = q.where('tier', '=', f.tier);
    if (f.since) q = q.where('created_at', '>=', new Date(f.since));
    if (f.until) q = q.where('created_at', '<=', new Date(f.until));
    if (!f.include_summaries) q = q.where('is_summary', '=', false);
    return q.selectAll();
  }

  private async decrypt(scope: EndUserScope, row: MemoryRow, keys?: TenantKeys): Promise<Memory> {
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
  private async queryCacheKey(scope: EndUserScope, input: QueryInput): Promise<string | undefined> {
    const gen = await this.deps.cache.get<number>(`qgen:${scope.tenantId}:${scope.userId}`);
    return `q:${scope.tenantId}:${scope.userId}:${gen ?? 0}:${sha256Hex(JSON.stringify([scope.projectId, input]))}`;
  }

  private async invalidateQueries(scope: EndUserScope) {
    await this.deps.cache.incr(`qgen:${scope.tenantId}:${scope.userId}`, 86_400);
  }
}

export { AppError };
