import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Embedder } from '../../../shared/ports/embedder.ts';
import type { Queue, Task } from '../../../shared/ports/queue.ts';
import { createLocalEmbedder } from '../../../shared/adapters/local-embedder/index.ts';
import { createLocalQueue } from '../../../shared/adapters/local-queue/index.ts';

/** The offline embedder behind a switch: while `down`, every call fails as an unreachable endpoint would. */
export function switchableEmbedder(): Embedder & { down: boolean } {
  const real = createLocalEmbedder();
  const e = {
    down: false,
    model: real.model,
    dimension: real.dimension,
    warm: () => real.warm(),
    embed: async (texts: string[]) => {
      if (e.down) throw new Error('connect ECONNREFUSED embeddings endpoint');
      return real.embed(texts);
    },
  };
  return e;
}

/** The local queue whose `send` throws while `broken`: a relay that crashes between commit and send. */
export function crashingQueue(): Queue & { broken: boolean; sendFailures: number } {
  const q = createLocalQueue();
  const state = { broken: false, sendFailures: 0 };
  return new Proxy(q as unknown as Queue & { broken: boolean; sendFailures: number }, {
    get(target, prop) {
      if (prop === 'broken') return state.broken;
      if (prop === 'sendFailures') return state.sendFailures;
      if (prop === 'send') {
        return async (tasks: Task[]) => {
          if (state.broken) {
            state.sendFailures++;
            throw new Error('relay process crashed before send');
          }
          return (target as unknown as Queue).send(tasks);
        };
      }
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    set(_target, prop, value) {
      if (prop === 'broken') state.broken = Boolean(value);
      return true;
    },
  });
}

/**
 * A TCP proxy between the app and PostgreSQL that a test can cut (every connection reset, new ones
 * refused) and restore: the database "stops" without touching the machine's server.
 */
export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    async close() {
      down = true;
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Polls `check` until it holds (bounded by attempts, not by a sleep the test depends on). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, attempts = 200, pauseMs = 100): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(`${what}: did not happen after ${attempts} attempts`);
}
