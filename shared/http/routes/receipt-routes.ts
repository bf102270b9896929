import type { DeletionReceipts } from '../../services/deletion-receipts.ts';
import { deletedCounts } from '../../services/deletion-receipts.ts';
import type { RouteDefinition } from '../types.ts';
import { route } from './route.ts';

/** The deletion routes whose answers carry a signed receipt. */
const RECEIPTED = new Set(['DELETE /memory/user/purge', 'DELETE /admin/tenants/{id}']);

export function receiptRoutes(receipts: DeletionReceipts): RouteDefinition[] {
  return [
    route({
      method: 'GET', path: '/.well-known/memorysync-receipt-key', summary: 'The Ed25519 public key that verifies deletion receipts', tags: ['meta'], auth: 'public',
      handler: async () => ({ status: 200, body: receipts.published(), headers: { 'Cache-Control': 'public, max-age=300' } }),
    }),
  ];
}

/**
 * Wraps the end-user purge and tenant deletion handlers (owned by their areas) so each successful
 * answer carries `receipt`: `{subject, deleted: {store: count}, at, key_id, signature}`.
 */
export function attachDeletionReceipts(routes: RouteDefinition[], receipts: DeletionReceipts): void {
  for (const r of routes) {
    if (!RECEIPTED.has(`${r.method} ${r.path}`)) continue;
    const inner = r.handler.bind(r);
    r.handler = async (ctx) => {
      const result = await inner(ctx);
      if (result.status >= 300 || !result.body || typeof result.body !== 'object') return result;
      const body = result.body as Record<string, unknown>;
      const subject = r.path === '/memory/user/purge'
        ? { type: 'end_user' as const, tenant_id: ctx.scope!.tenantId, end_user_id: String(body.end_user_id ?? ctx.endUser?.endUserExternalId) }
        : { type: 'tenant' as const, tenant_id: String((ctx.params as { id: string }).id) };
      return { ...result, body: { ...body, receipt: receipts.sign(subject, deletedCounts(body)) } };
    };
  }
}
