import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pinnedLookup, verifyOutboundUrl, type SsrfGuardOptions } from '../net/ssrf-guard.ts';

export interface GuardedRequest {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** the body is read up to this many bytes, then the response is marked truncated (default 5 MiB) */
  maxBytes?: number;
  /** connect, send and read the whole response (default 15 s) */
  timeoutMs?: number;
  /** keep the raw body bytes in `bytes` (documents); `body` is then empty */
  binary?: boolean;
}

export interface GuardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** the raw body, when the request asked for `binary` */
  bytes?: Buffer;
  truncated: boolean;
  url: URL;
}

/** Outbound HTTP for connectors and the crawler: every URL passes the SSRF guard, redirects are never followed. */
export interface GuardedHttp {
  /** Checks a URL as `request` would, without connecting. Throws SsrfBlockedError. */
  verify(url: string | URL): Promise<void>;
  request(url: string | URL, init?: GuardedRequest): Promise<GuardedResponse>;
}

const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;

/**
 * The webhooks client (`createOutboundHttp`) sends POST/PUT with an 8 KiB body preview; pull-sync needs
 * GET and whole bodies, so this wraps the same `verifyOutboundUrl` and connects to the verified address
 * only (no second DNS lookup, so no rebinding). A caller that follows a redirect must call again with the
 * Location, which is checked again.
 */
export function createGuardedHttp(options: SsrfGuardOptions): GuardedHttp {
  return {
    async verify(url) {
      await verifyOutboundUrl(url, options);
    },
    async request(rawUrl, init = {}) {
      const target = await verifyOutboundUrl(rawUrl, options);
      const maxBytes = init.maxBytes ?? DEFAULT_MAX_BYTES;
      const timeoutMs = init.timeoutMs ?? 15_000;
      const { url } = target;
      const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const headers: Record<string, string> = { 'user-agent': 'MemorySync-Integrations/1.0', ...(init.headers ?? {}) };
      if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
      return new Promise<GuardedResponse>((resolve, reject) => {
        const signal = AbortSignal.timeout(timeoutMs);
        const r = requestFn(url, { method: init.method ?? 'GET', headers, lookup: pinnedLookup(target), signal, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let truncated = false;
          const finish = () => {
            const raw = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: init.binary ? '' : raw.toString('utf8'), ...(init.binary ? { bytes: raw } : {}), truncated, url });
          };
          res.on('data', (chunk: Buffer) => {
            if (truncated) return;
            if (size + chunk.length > maxBytes) {
              chunks.push(chunk.subarray(0, maxBytes - size));
              truncated = true;
              res.destroy();
              finish();
              return;
            }
            chunks.push(chunk);
            size += chunk.length;
          });
          res.on('end', () => { if (!truncated) finish(); });
          res.on('error', (e) => { if (!truncated) reject(e); });
        });
        r.on('error', (error) => reject(signal.aborted ? new Error(`timed out after ${timeoutMs} ms`) : error));
        r.end(init.body);
      });
    },
  };
}
