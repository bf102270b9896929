import { randomUUID } from 'node:crypto';
import type { Task } from '../ports/queue.ts';

/**
 * A webhook fan-out task for an organisation event (`team.*`, `api_key.*`, `billing.*`): the same
 * payload shape MemoryService writes, with no end user. Enqueue it in the transaction of the change.
 */
export function orgWebhookTask(tenantId: string, event: string, data: Record<string, unknown>, now: Date): Task {
  return {
    id: randomUUID(), family: 'webhook-delivery', tenantId, type: 'fanout',
    payload: { event, projectId: null, endUserId: null, data },
    createdAt: now.toISOString(),
  };
}

interface ApiKeyFacts { id: number; name: string; key_prefix: string; environment: string; scopes: string[]; project_id: string | null }

/** `api_key.created` / `api_key.revoked`: the key's public facts (never the secret or its hash). */
export function apiKeyWebhookTask(tenantId: string, event: 'api_key.created' | 'api_key.revoked', key: ApiKeyFacts, now: Date, extra: Record<string, unknown> = {}): Task {
  return orgWebhookTask(tenantId, event, {
    id: key.id, name: key.name, key_prefix: key.key_prefix, environment: key.environment, scopes: key.scopes, project_id: key.project_id, ...extra,
  }, now);
}
