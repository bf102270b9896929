import { lookup as dnsLookup } from 'node:dns/promises';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { BlockList, isIP } from 'node:net';

/** Resolves a hostname to every address it has (the shape of `dns.promises.lookup(host, { all: true })`). */
export type HostResolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemResolver: HostResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** Why an outbound URL was refused; `reason` is safe to show to the tenant who configured it. */
export class SsrfBlockedError extends Error {
  override readonly name = 'SsrfBlockedError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

// ------------------------------------------------------------------ address classification

const V4_BLOCKED: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const V6_BLOCKED: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'IPv4-compatible'],
  ['fc00::', 7, 'unique-local (includes fd00:ec2::254, the EC2 metadata address)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
  ['100::', 64, 'discard-only'],
];

const blockLists = (() => {
  const v4 = V4_BLOCKED.map(([net, bits, label]) => { const l = new BlockList(); l.addSubnet(net, bits, 'ipv4'); return { l, label }; });
  const v6 = V6_BLOCKED.map(([net, bits, label]) => { const l = new BlockList(); l.addSubnet(net, bits, 'ipv6'); return { l, label }; });
  return { v4, v6 };
})();

/** The 16 bytes of an IPv6 address (any textual form, with or without a zone or dotted IPv4 tail). */
function ipv6Bytes(address: string): Uint8Array {
  let text = address.replace(/%.*$/, '').toLowerCase();
  const bytes = new Uint8Array(16);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((g, i) => {
    const v = parseInt(g || '0', 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  return bytes;
}

const v4FromBytes = (b: Uint8Array, offset: number) => `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;

/**
 * The IPv4 address an IPv6 address carries and that a connection to it would reach: IPv4-mapped
 * (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
 */
function embeddedIpv4(address: string): string | undefined {
  const b = ipv6Bytes(address);
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4FromBytes(b, 12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return v4FromBytes(b, 12);
  if (b[0] === 0x20 && b[1] === 0x02) return v4FromBytes(b, 2);
  return undefined;
}

/**
 * Why `address` must not be contacted (private, loopback, link-local, unique-local, metadata, CGNAT,
 * multicast, reserved, or an IPv6 form of one of those), or `undefined` when it is a public address.
 * Anything that is not an IP address is refused.
 */
export function blockedAddressReason(address: string): string | undefined {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return blockLists.v4.find(({ l }) => l.check(address, 'ipv4'))?.label;
  if (family === 6) {
    const inner = embeddedIpv4(address);
    if (inner) {
      const reason = blockedAddressReason(inner);
      return reason ? `${reason} (IPv6 form of ${inner})` : undefined;
    }
    const normalised = address.replace(/%.*$/, '');
    return blockLists.v6.find(({ l }) => l.check(normalised, 'ipv6'))?.label;
  }
  return 'not an IP address';
}

// ------------------------------------------------------------------ URL checks

/** A URL whose host resolved to addresses that all passed the guard; connect to `address` only. */
export interface VerifiedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

export interface SsrfGuardOptions {
  /** ALLOW_PRIVATE_WEBHOOK_TARGETS: skip the address ranges (local development only) */
  allowPrivate: boolean;
  resolve?: HostResolver;
}

/** Syntax rules that need no DNS: http/https, no credentials in the URL. Throws SsrfBlockedError. */
export function parseOutboundUrl(raw: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw new SsrfBlockedError('not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SsrfBlockedError('only http and https URLs are allowed');
  if (url.username || url.password) throw new SsrfBlockedError('credentials in the URL are not allowed; use an auth header');
  if (!url.hostname) throw new SsrfBlockedError('the URL has no host');
  return url;
}

/**
 * Resolves the URL's host (every address) and refuses it when any address is not public, unless
 * private targets are allowed. The caller must connect to the returned address, never resolve again:
 * a second lookup could answer differently (DNS rebinding).
 */
export async function verifyOutboundUrl(raw: string | URL, options: SsrfGuardOptions): Promise<VerifiedTarget> {
  const url = parseOutboundUrl(raw);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string; family: number }>;
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await (options.resolve ?? systemResolver)(host);
    } catch {
      throw new SsrfBlockedError(`cannot resolve ${host}`);
    }
    if (addresses.length === 0) throw new SsrfBlockedError(`cannot resolve ${host}`);
  }
  if (!options.allowPrivate) {
    for (const { address } of addresses) {
      const reason = blockedAddressReason(address);
      if (reason) throw new SsrfBlockedError(`${host} resolves to a non-public address (${reason})`);
    }
  }
  const first = addresses[0]!;
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}

// ------------------------------------------------------------------ guarded requests

export interface OutboundRequest {
  method?: 'POST' | 'PUT';
  headers: Record<string, string>;
  body: string;
  /** the whole exchange: connect, send, response headers and body (default 10 s) */
  timeoutMs?: number;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** the first 8 KiB of the response body, for error messages */
  bodyPreview: string;
  latencyMs: number;
}

export interface OutboundHttp {
  /** Checks a URL as `post` would (for config-time validation). Throws SsrfBlockedError. */
  verify(url: string | URL): Promise<VerifiedTarget>;
  /**
   * Sends one request to a verified address with the URL's host name for Host and TLS (SNI and
   * certificate checks are unchanged). Redirects are never followed: a 3xx is returned as is.
   * Throws SsrfBlockedError before any connection, or an Error for network failures and timeouts.
   */
  send(url: string | URL, request: OutboundRequest): Promise<OutboundResponse>;
}

const PREVIEW_BYTES = 8192;

/** Keep-alive agents kept at once; the least recently used is closed beyond this. */
const MAX_AGENTS = 256;
/** Idle keep-alive sockets are closed after this, below the 5 s idle timeout common servers (Node's) use. */
const IDLE_SOCKET_MS = 4_000;

/** A `lookup` for Node's http(s) that never asks DNS: it can only answer with the verified address (no rebinding). */
export function pinnedLookup({ address, family }: Pick<VerifiedTarget, 'address' | 'family'>): LookupFunction {
  return (_hostname, opts, callback) => {
    if ((opts as { all?: boolean }).all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/**
 * Keep-alive connection pools, one per (scheme, verified address, host, port). Each agent's `lookup`
 * can only answer with its verified address, so a pooled socket is always connected to an address
 * that passed the guard for this host; a request whose host now resolves elsewhere gets another
 * agent (and another connection). TLS session and SNI stay tied to the host name.
 */
function createAgentPool() {
  const agents = new Map<string, HttpAgent>();
  return {
    agentFor(target: VerifiedTarget): HttpAgent {
      const { url, address, family } = target;
      const key = `${url.protocol}//${address}|${url.host}`;
      const hit = agents.get(key);
      if (hit) {
        agents.delete(key);
        agents.set(key, hit);
        return hit;
      }
      const options = { keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: IDLE_SOCKET_MS, lookup: pinnedLookup({ address, family }) };
      const agent = url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
      agents.set(key, agent);
      if (agents.size > MAX_AGENTS) {
        const [oldestKey, oldest] = agents.entries().next().value as [string, HttpAgent];
        agents.delete(oldestKey);
        oldest.destroy();
      }
      return agent;
    },
    close() {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}

/** The outbound HTTP client of webhooks, SIEM forwarding and other tenant-configured targets. */
export function createOutboundHttp(options: SsrfGuardOptions): OutboundHttp & { close(): void } {
  const verify = (url: string | URL) => verifyOutboundUrl(url, options);
  const pool = createAgentPool();

  /** One exchange on a pooled connection to the verified address; `reused` says whether the socket was. */
  function exchange(target: VerifiedTarget, req: OutboundRequest, started: number): Promise<OutboundResponse> {
    const timeoutMs = req.timeoutMs ?? 10_000;
    const { url } = target;
    const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<OutboundResponse>((resolve, reject) => {
      const signal = AbortSignal.timeout(timeoutMs);
      const r: ClientRequest = requestFn(
        url,
        {
          method: req.method ?? 'POST',
          headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) },
          agent: pool.agentFor(target),
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            if (size < PREVIEW_BYTES) chunks.push(chunk);
            size += chunk.length;
          });
          res.on('end', () => resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            bodyPreview: Buffer.concat(chunks).subarray(0, PREVIEW_BYTES).toString('utf8'),
            latencyMs: Math.round(performance.now() - started),
          }));
          res.on('error', reject);
        },
      );
      r.on('error', (error: NodeJS.ErrnoException) => {
        if (signal.aborted) reject(new Error(`timed out after ${timeoutMs} ms`));
        // A kept-alive socket the server closed while idle fails before any answer: marked for one retry.
        else reject(Object.assign(error, { staleSocket: r.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') }));
      });
      r.end(req.body);
    });
  }

  return {
    verify,
    async send(rawUrl, req) {
      const target = await verify(rawUrl);
      const started = performance.now();
      try {
        return await exchange(target, req, started);
      } catch (error) {
        // Node's documented pattern: a reset on a reused keep-alive socket is retried once on a new one.
        if ((error as { staleSocket?: boolean }).staleSocket) return exchange(target, req, started);
        throw error;
      }
    },
    close: () => pool.close(),
  };
}
