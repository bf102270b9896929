import type { MemoryRow } from '../db/schema.ts';
import { toV1MemoryId } from './ids.ts';

/** A memory as services hand it to the HTTP layer: decrypted, never a raw row. */
export interface Memory {
  id: number;
  userId: string;
  projectId: string | null;
  environment: string;
  text: string;
  summary: string | null;
  keyPoints: string[];
  tags: string[];
  source: string | null;
  eventType: string | null;
  memoryType: string;
  importance: number;
  qualityScore: number;
  tier: string;
  retentionStatus: string;
  isSummary: boolean;
  metadata: Record<string, unknown>;
  embeddingStatus: string;
  expiresAt: Date | null;
  lastAccessedAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface ScoreParts {
  semantic: number;
  lexical: number;
  recency: number;
  importance: number;
}

export interface ScoredMemory extends Memory {
  score: number;
  scoreParts: ScoreParts;
}

/** The columns a Memory is built from (reads that return many rows select only these). */
export const MEMORY_COLUMNS = [
  'id', 'tenant_id', 'user_id', 'project_id', 'environment', 'text_ciphertext', 'summary_ciphertext', 'key_points', 'tags', 'source',
  'event_type', 'memory_type', 'importance', 'quality_score', 'tier', 'retention_status', 'is_summary', 'metadata', 'embedding_status',
  'expires_at', 'last_accessed_at', 'created_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof MemoryRow>;

export type MemoryColumnsRow = Pick<MemoryRow, (typeof MEMORY_COLUMNS)[number]>;

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function rowToMemory(row: MemoryColumnsRow, text: string, summary: string | null, endUserExternalId: string): Memory {
  return {
    id: Number(row.id),
    userId: endUserExternalId,
    projectId: row.project_id,
    environment: row.environment,
    text,
    summary,
    keyPoints: row.key_points ?? [],
    tags: row.tags ?? [],
    source: row.source,
    eventType: row.event_type,
    memoryType: row.memory_type,
    importance: Number(row.importance),
    qualityScore: Number(row.quality_score),
    tier: row.tier,
    retentionStatus: row.retention_status,
    isSummary: row.is_summary,
    metadata: row.metadata ?? {},
    embeddingStatus: row.embedding_status,
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    lastAccessedAt: new Date(row.last_accessed_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** MemoryResponse of the contract (section 4.1); fields whitelisted. */
export function toMemoryResponse(m: Memory | ScoredMemory) {
  return {
    id: m.id,
    user_id: m.userId,
    project_id: m.projectId,
    environment: m.environment,
    text: m.text,
    summary: m.summary,
    key_points: m.keyPoints,
    tags: m.tags,
    source: m.source,
    event_type: m.eventType,
    memory_type: m.memoryType,
    importance: m.importance,
    quality_score: m.qualityScore,
    tier: m.tier,
    retention_status: m.retentionStatus,
    is_summary: m.isSummary,
    metadata: m.metadata,
    embedding_status: m.embeddingStatus,
    expires_at: iso(m.expiresAt),
    last_accessed_at: iso(m.lastAccessedAt),
    created_at: iso(m.createdAt),
    updated_at: iso(m.updatedAt),
    ...('score' in m ? { score: round(m.score) } : {}),
  };
}

/** V1MemoryItem of the tenant-addressed data plane. */
export function toV1Item(m: Memory | ScoredMemory) {
  return {
    memory_id: toV1MemoryId(m.id),
    raw_text: m.text,
    value: m.text,
    summary: m.summary,
    metadata: m.metadata,
    created_at: iso(m.createdAt),
    source: m.source,
    tags: m.tags,
    ...('score' in m ? { score: round(m.score) } : {}),
  };
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
