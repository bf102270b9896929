import { Agent, request } from 'node:http';

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/**
 * One HTTP request with full control over what goes on the wire: raw (even invalid) paths, repeated
 * headers (array values become repeated header lines), raw bytes as the body.
 */
export function rawRequest(baseUrl: string, req: RawRequest, timeoutMs = 30_000, retried = false): Promise<RawResponse> {
  const url = new URL(baseUrl);
  // Node sends GET/DELETE bodies without framing unless told the length; say it, as real clients do.
  const headers = req.body !== undefined && !Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'content-length')
    ? { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) }
    : req.headers;
  return new Promise((resolve, reject) => {
    const r = request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs} ms: ${req.method} ${req.path.slice(0, 80)}`)));
    r.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed meanwhile: the request never reached it (Node's documented retry case).
      if (!retried && r.reusedSocket && err.code === 'ECONNRESET') rawRequest(baseUrl, req, timeoutMs, true).then(resolve, reject);
      else reject(err);
    });
    if (req.body !== undefined) r.end(req.body);
    else r.end();
  });
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}
