import { sql } from 'kysely';
import type { Cache } from '../../ports/cache.ts';
import type { Db } from '../../ports/db.ts';
import type { Embedder } from '../../ports/embedder.ts';
import type { VectorStore } from '../../ports/vector-store.ts';
import { DatabaseUnavailableError } from '../../errors.ts';
import type { RouteDefinition } from '../types.ts';
import { route } from './route.ts';

export const VERSION = '0.1.0';

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);

/**
 * Liveness with dependency checks: the database is the only hard dependency (503 when it is down);
 * a slow or absent cache, index or embedder makes the answer `degraded`, still 200.
 */
export function healthRoutes(deps: { db: Db; vectors: VectorStore; cache: Cache; embedder: Embedder }): RouteDefinition[] {
  return [
    route({
      method: 'GET', path: '/health', summary: 'Liveness and dependency status', tags: ['health'], auth: 'public',
      handler: async () => {
        const database = await within(sql`select 1`.execute(deps.db.kysely).then(() => true, () => false), 1500);
        if (database !== true) throw new DatabaseUnavailableError();
        const [vectorStore, cache] = await Promise.all([
          within(deps.vectors.health().catch(() => false), 1000),
          within(deps.cache.healthy().catch(() => false), 500),
        ]);
        const checks = {
          database: 'ok',
          vector_store: vectorStore === true ? 'ok' : 'degraded',
          cache: cache === true ? 'ok' : 'degraded',
          embedder: deps.embedder.model,
        };
        const degraded = vectorStore !== true || cache !== true;
        return { status: 200, body: { status: degraded ? 'degraded' : 'ok', version: VERSION, checks } };
      },
    }),
  ];
}
