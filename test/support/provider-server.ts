import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface ProviderRequest {
  method: string;
  /** path and query as received */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ProviderAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** objects are sent as JSON; strings as they are; a Buffer as raw bytes (a downloaded file) */
  body?: unknown;
}

export type ProviderHandler = (req: ProviderRequest, base: string) => ProviderAnswer | undefined;

export interface ProviderServer {
  url: string;
  requests: ProviderRequest[];
  /** replaces the handler (e.g. to answer 429 from now on) */
  handle(handler: ProviderHandler): void;
  close(): Promise<void>;
}

/** A provider's fixture, as documented in its public API reference. */
export const fixture = (provider: string, name: string): any =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/integrations/${provider}/${name}.json`, import.meta.url)), 'utf8'));

/**
 * A local HTTP server on 127.0.0.1 that replays a provider's documented responses; `{{base}}` in a
 * fixture becomes the server's own URL (pagination links point back at it). Unrouted requests get 404.
 */
export async function startProviderServer(handler: ProviderHandler): Promise<ProviderServer> {
  let current = handler;
  const requests: ProviderRequest[] = [];
  let base = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ProviderRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(request);
      const answer = current(request, base) ?? { status: 404, body: { message: 'Not Found' } };
      if (Buffer.isBuffer(answer.body)) {
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/octet-stream', ...(answer.headers ?? {}) });
        res.end(answer.body);
        return;
      }
      const raw = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      const body = raw.replaceAll('{{base}}', base);
      const headers: Record<string, string> = { ...(typeof answer.body === 'string' ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...(answer.headers ?? {}) };
      for (const [k, v] of Object.entries(headers)) headers[k] = v.replaceAll('{{base}}', base);
      res.writeHead(answer.status ?? 200, headers);
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    handle: (h) => { current = h; },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
