import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { sha256Hex } from '../crypto/hashing.ts';
import type { AuditMeta } from '../services/identity-service.ts';
import type { AddInput, MemoryService } from '../services/memory-service.ts';
import { SCOPES, type EndUserScope, type Principal } from '../services/scope.ts';
import { chunkText, DEFAULT_CHUNKING, type ChunkOptions } from './chunking.ts';
import type { NormalizedObject } from './types.ts';

/** bulkAdd takes at most 50 items per call. */
const BULK_LIMIT = 50;

/** The principal synced memories are written as: the platform's integration worker inside the tenant. */
export const integrationPrincipal = (tenantId: string, label: string): Principal => ({
  kind: 'session', tenantId, accountId: null, accountPublicId: label, apiKeyId: null, role: 'owner', scopes: [...SCOPES],
  projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false,
});

export const workerMeta = (requestId: string, userAgent: string): AuditMeta => ({ requestId, ipAddress: null, userAgent, audit: { written: false } });

export interface ChunkedObject {
  object: NormalizedObject;
  chunks: Array<{ index: number; text: string; key: string }>;
}

/**
 * An object's chunks with their idempotency keys: sha256 of (object id, chunk index, content hash), so
 * an unchanged chunk has the same key on every sync and an edited one gets a new key.
 */
export function chunkObject(object: NormalizedObject, options: ChunkOptions = DEFAULT_CHUNKING): ChunkedObject {
  const chunks = chunkText(object.content, options).map((text, index) => ({ index, text, key: sha256Hex(`${object.id}\n${index}\n${sha256Hex(text)}`) }));
  return { object, chunks };
}

export interface IngestTarget {
  db: Kysely<Database>;
  memories: MemoryService;
  scope: EndUserScope;
  /** memories.source */
  source: string;
  /** prefixes memories.idempotency_key, e.g. `int:<connection id>` */
  idempotencyPrefix: string;
  meta: () => AuditMeta;
  /** extra metadata on every memory */
  metadata: Record<string, unknown>;
}

export interface IngestedChunk {
  key: string;
  objectId: string;
  chunkIndex: number;
  /** null when the content policy refused it (recorded so it is not retried) */
  memoryId: number | null;
}

export interface IngestResult {
  created: number;
  recorded: IngestedChunk[];
  /** chunks not stored because the monthly quota is spent; they are tried again on the next sync */
  deferred: number;
}

/** Stores chunks as memories through MemoryService.bulkAdd (refusal policy, encryption, audit, embedding). */
export async function ingestChunks(target: IngestTarget, objects: ChunkedObject[]): Promise<IngestResult> {
  const pending = objects.flatMap(({ object, chunks }) => chunks.map((c) => ({ object, chunk: c, count: chunks.length })));
  const result: IngestResult = { created: 0, recorded: [], deferred: 0 };
  for (let i = 0; i < pending.length; i += BULK_LIMIT) {
    const batch = pending.slice(i, i + BULK_LIMIT);
    const inputs: AddInput[] = batch.map(({ object, chunk, count }) => ({
      text: chunk.text,
      source: target.source,
      tags: [target.source, object.type],
      idempotency_key: `${target.idempotencyPrefix}:${chunk.key}`,
      metadata: {
        ...target.metadata, ...object.metadata,
        object_id: object.id, object_type: object.type, url: object.url, chunk_index: chunk.index, chunk_count: count,
      },
    }));
    const out = await target.memories.bulkAdd(target.scope, inputs, false, target.meta());
    const missing: Array<{ at: number; key: string }> = [];
    for (const r of out.results) {
      const { object, chunk } = batch[r.index]!;
      if (r.status === 'skipped' && r.reason === 'quota_exceeded') {
        result.deferred++;
        continue;
      }
      if (r.status === 'created') result.created++;
      const memoryId = r.memory_ids[0] ?? null;
      result.recorded.push({ key: chunk.key, objectId: object.id, chunkIndex: chunk.index, memoryId });
      // Skipped by the idempotency index (an earlier run stored it but crashed before recording it).
      if (r.status === 'skipped' && memoryId === null) missing.push({ at: result.recorded.length - 1, key: `${target.idempotencyPrefix}:${chunk.key}` });
    }
    if (missing.length) {
      const rows = await target.db.selectFrom('memories').select(['id', 'idempotency_key'])
        .where('tenant_id', '=', target.scope.tenantId).where('user_id', '=', target.scope.userId)
        .where('idempotency_key', 'in', missing.map((m) => m.key)).execute();
      const byKey = new Map(rows.map((r) => [r.idempotency_key, Number(r.id)]));
      for (const m of missing) result.recorded[m.at]!.memoryId = byKey.get(m.key) ?? null;
    }
  }
  return result;
}
