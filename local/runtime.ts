import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createApp, type AdapterOverrides, type App } from '#shared/app.ts';
import type { Config } from '#shared/config.ts';
import { AppError } from '#shared/errors.ts';
import { renderError } from '#shared/http/middleware/error-handler.ts';
import type { LocalQueue } from '#shared/adapters/local-queue/index.ts';
import { createScheduler, type Scheduler } from '#shared/scheduler/index.ts';
import { scheduledJobs } from '#shared/jobs.ts';
import { createWorkers } from '#shared/workers.ts';
import { lambdaContext, toProxyEvent, writeProxyResult } from './proxy-event.ts';

/** API Gateway's own payload cap; the handler enforces the (smaller) MAX_BODY_BYTES with a 413 envelope. */
const HARD_BODY_CAP = 10 * 1024 * 1024;

export interface DevCredentials {
  apiKey: string;
  tenantId: string;
  projectId: string;
}

export interface LocalServer {
  url: string;
  app: App;
  queue: LocalQueue | null;
  scheduler: Scheduler;
  devCredentials: DevCredentials | null;
  /** drain in-flight work (≤ 30 s), stop the scheduler, close the database */
  stop(): Promise<void>;
}

/**
 * The local runtime: the same API handler behind a Node HTTP server, the same worker handlers on the
 * in-process queue, the same jobs on in-process timers.
 */
export async function startLocalServer(config: Config, overrides: AdapterOverrides = {}, options: { startBackground?: boolean } = {}): Promise<LocalServer> {
  const app = await createApp(config, overrides);
  const queue = app.queue.kind === 'local' ? (app.queue as LocalQueue) : null;
  if (queue) {
    for (const [family, worker] of Object.entries(createWorkers(app))) queue.consume(family as never, worker);
  }
  const scheduler = createScheduler({ db: app.db, jobs: scheduledJobs(app), logger: app.logger });
  const devCredentials = config.DEV_BOOTSTRAP && config.MEMORYSYNC_DATA_DIR !== ':memory:' ? await bootstrapDev(app) : null;

  const inFlight = new Set<Promise<void>>();
  const server: Server = createServer((req, res) => {
    const work = (async () => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > HARD_BODY_CAP) {
          writeProxyResult(res, renderError(new AppError('PAYLOAD_TOO_LARGE', 413, `Request body exceeds ${config.MAX_BODY_BYTES} bytes`), randomUUID()));
          req.destroy();
          return;
        }
        chunks.push(chunk as Buffer);
      }
      const result = await app.api(toProxyEvent(req, Buffer.concat(chunks)), lambdaContext());
      writeProxyResult(res, result);
    })().catch((err) => {
      app.logger.error('local server failed to answer', { error: err });
      if (!res.headersSent) writeProxyResult(res, renderError(new AppError('INTERNAL_ERROR', 500, 'Internal server error'), randomUUID()));
    });
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
  });
  // Idle keep-alive sockets stay open well past any client's reuse window (undici keeps them 4 s unless told
  // otherwise): with a short server timeout a busy event loop lets the server close a socket just as a client
  // reuses it, and that request fails with ECONNRESET. Shutdown closes idle sockets at once (server.close()).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // Requests Node rejects before the handler (header block over 16 KB, malformed request line) still get the envelope.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return;
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const requestId = randomUUID();
    const body = JSON.stringify(renderErrorBody(tooLarge ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST', tooLarge ? 'Request headers or URL too large' : 'Malformed HTTP request', requestId));
    socket.end(`HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nX-Request-ID: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve) => server.listen(config.PORT, config.HOST, resolve));
  const address = server.address() as AddressInfo;
  if (options.startBackground !== false) {
    // The in-memory queue lost whatever it held at the last shutdown; the outbox still has it.
    if (queue) await app.relay.requeueUnprocessed();
    queue?.start();
    scheduler.start();
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${config.HOST}:${address.port}`,
    app,
    queue,
    scheduler,
    devCredentials,
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 30_000).unref())]);
        if (queue) await queue.drain(30_000);
        await scheduler.stop(30_000);
        await app.close();
      })()),
  };
}

const renderErrorBody = (code: string, message: string, requestId: string) => JSON.parse(renderError(new AppError(code, code === 'HEADERS_TOO_LARGE' ? 431 : 400, message), requestId).body) as unknown;

/**
 * First start on an empty data dir: a development tenant, project and API key, printed once and kept
 * in `.memorysync/dev.json` (mode 0600). Later starts reuse them.
 */
async function bootstrapDev(app: App): Promise<DevCredentials> {
  const path = join(app.config.MEMORYSYNC_DATA_DIR, 'dev.json');
  if (existsSync(path)) {
    const saved = JSON.parse(readFileSync(path, 'utf8')) as DevCredentials;
    const tenant = await app.db.kysely.selectFrom('tenants').select('id').where('id', '=', saved.tenantId).executeTakeFirst();
    if (tenant) return saved;
  }
  const creds = await app.identity.bootstrapTenant('Development');
  writeFileSync(path, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  process.stdout.write(
    `\nCreated a development tenant (shown once; also saved to ${path}):\n  API key:    ${creds.apiKey}\n  tenant id:  ${creds.tenantId}\n  project id: ${creds.projectId}\n\n`,
  );
  return creds;
}
