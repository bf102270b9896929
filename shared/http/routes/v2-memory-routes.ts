import { Buffer } from 'node:buffer';
import { validationError } from '../../errors.ts';
import type { MemoryService, PageCursor } from '../../services/memory-service.ts';
import { toMemoryResponse } from '../../services/memory-model.ts';
import type { EndUserScope } from '../../services/scope.ts';
import { cursorPageQuery } from '../schemas/recall.ts';
import type { RouteDefinition } from '../types.ts';
import { route } from './route.ts';

export const V2_PREFIX = '/api/v2';

/** The /memory/* routes that /api/v2 mirrors (same handlers, same schemas). */
const MIRRORED = new Set(['POST /memory/add', 'POST /memory/bulk-add', 'POST /memory/query', 'POST /memory/retrieve', 'DELETE /memory/forget', 'GET /memory/{id}', 'PATCH /memory/{id}', 'DELETE /memory/{id}']);

const encodeCursor = (c: PageCursor) => Buffer.from(JSON.stringify([c.createdUs, c.id])).toString('base64url');

function decodeCursor(value: string): PageCursor {
  try {
    const [createdUs, id] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdUs === 'string' && /^-?\d{1,18}$/.test(createdUs) && Number.isSafeInteger(id) && (id as number) > 0) return { createdUs, id: id as number };
  } catch {
    // fall through to the validation error
  }
  throw validationError('cursor: not a cursor this API returned', [{ loc: ['query', 'cursor'], msg: 'invalid cursor', type: 'value_error' }]);
}

/**
 * /api/v2/memory/*: the memory routes remounted under the v2 prefix — the very route definitions of
 * /memory/* (handlers and zod schemas are shared, not copied) — plus a list with cursor pagination.
 * Errors on /api/v2 use the canonical envelope only (see renderV2Error).
 */
export function v2MemoryRoutes(memoryRoutes: readonly RouteDefinition[], memories: MemoryService): RouteDefinition[] {
  const mirrored = memoryRoutes
    .filter((r) => MIRRORED.has(`${r.method} ${r.path}`))
    .map((r) => ({ ...r, path: `${V2_PREFIX}${r.path}`, tags: ['v2'] }));
  return [
    ...mirrored,
    route({
      method: 'GET', path: `${V2_PREFIX}/memory/list`, summary: 'List memories, newest first, with cursor pagination', tags: ['v2'], auth: 'any', scopes: ['memories:read'], endUser: true, query: cursorPageQuery,
      handler: async (ctx) => {
        const cursor = ctx.query.cursor ? decodeCursor(ctx.query.cursor) : undefined;
        const page = await memories.listPage(ctx.endUser as EndUserScope, { limit: ctx.query.limit, cursor });
        return { status: 200, body: { items: page.memories.map(toMemoryResponse), next_cursor: page.next ? encodeCursor(page.next) : null } };
      },
    }),
  ];
}
