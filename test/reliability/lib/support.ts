import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AdapterOverrides } from '../../../shared/app.ts';
import { startTestServer, type TestServer } from '../../support/server.ts';
import { freshSchema } from '../../support/pg-schema.ts';

/** a port the OS just handed out and released, so parallel files do not collide */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** A throwaway redis-server on `port` (no persistence), resolved once it accepts connections. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-300)}`)));
  });
  child.removeAllListeners('exit');
  return child;
}

export async function killProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

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
