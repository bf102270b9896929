import type { ChildProcess } from 'node:child_process';
import type { AdapterOverrides } from '../../../shared/app.ts';
import { startTestServer, type TestServer } from '../../support/server.ts';
import { freshSchema } from '../../support/pg-schema.ts';

export { freePort, killProcess, startRedis } from '../../support/redis-server.ts';
import { freePort, killProcess, startRedis } from '../../support/redis-server.ts';

export type TargetKind = 'embedded' | 'postgres';

export interface Target {
  kind: TargetKind;
  server: TestServer;
  /** a description for the report */
  label: string;
  redis?: ChildProcess;
  redisPort?: number;
  close(): Promise<void>;
}

/**
 * The server under test: the embedded default (PGlite + pgvector, in-process cache) or the machine's
 * PostgreSQL (a fresh schema) with a Redis the suite starts itself.
 */
export async function startTarget(kind: TargetKind, env: Record<string, string> = {}, overrides: AdapterOverrides = {}): Promise<Target> {
  if (kind === 'embedded') {
    const server = await startTestServer(env, overrides);
    return { kind, server, label: 'embedded (PGlite + pgvector, in-process cache)', close: () => server.stop() };
  }
  const schema = await freshSchema('rel');
  const redisPort = await freePort();
  const redis = await startRedis(redisPort);
  const server = await startTestServer({ DATABASE_URL: schema.url, REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATABASE_POOL_MAX: '10', ...env }, overrides);
  return {
    kind, server, redis, redisPort,
    label: `PostgreSQL (fresh schema, ${server.app.vectors.kind} vectors) + Redis`,
    async close() {
      await server.stop();
      await killProcess(redis);
      await schema.drop();
    },
  };
}
