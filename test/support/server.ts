import { inject } from 'vitest';
import { loadConfig } from '#shared/config.ts';
import type { AdapterOverrides } from '#shared/app.ts';
import { startLocalServer, type LocalServer } from '#local/runtime.ts';

export interface TestServer extends LocalServer {
  /** fetch against the server with JSON in and out */
  call(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown; rawBody?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  /** a fresh tenant with its default project and an unrestricted API key */
  newTenant(name?: string): Promise<{ apiKey: string; tenantId: string; projectId: string }>;
}

/**
 * Starts the real local server (same handler, same adapters) on a random port with an in-memory
 * PGlite unless `env` says otherwise. Background queue and scheduler are off unless asked for, so
 * tests drive them explicitly instead of waiting on timers.
 */
export async function startTestServer(env: Record<string, string> = {}, overrides: AdapterOverrides = {}, options: { startBackground?: boolean } = {}): Promise<TestServer> {
  const config = loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', PORT: '0', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false', PGLITE_TEMPLATE: inject('pgliteTemplate'), ...env });
  const server = await startLocalServer(config, overrides, { startBackground: options.startBackground ?? false });
  return Object.assign(server, {
    async call(method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown; rawBody?: string } = {}) {
      const hasBody = opts.rawBody !== undefined || opts.body !== undefined;
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...(opts.headers ?? {}) },
        body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        // non-JSON answers are returned as text so a test can assert on them
      }
      return { status: res.status, body, headers: res.headers };
    },
    newTenant: (name = 'Test tenant') => server.app.identity.bootstrapTenant(name),
  });
}

export const keyHeaders = (apiKey: string, endUser?: string, extra: Record<string, string> = {}) => ({
  'X-API-Key': apiKey,
  ...(endUser ? { 'X-End-User-ID': endUser } : {}),
  ...extra,
});

/** Row counts of every table a rejected request must not touch. */
export async function tableCounts(server: LocalServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['memories', 'memory_events', 'outbox', 'projects', 'api_keys', 'users', 'tenants'] as const) {
    const row = await server.app.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    out[table] = Number(row.n);
  }
  return out;
}
