import type { IncomingHttpHeaders } from 'node:http';
import type { GuardedRequest, GuardedResponse } from '../guarded-http.ts';
import { ProviderAuthError, ProviderError, ProviderRateLimitError, type ConnectorContext, type PageResult } from '../types.ts';

const DEFAULT_RETRY_MS = 60_000;
const MAX_REDIRECTS = 3;

const headerOf = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfter(headers: IncomingHttpHeaders, now: Date): Date | undefined {
  const raw = headerOf(headers, 'retry-after');
  if (!raw) return undefined;
  if (/^\d+$/.test(raw.trim())) return new Date(now.getTime() + Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : new Date(at);
}

/** GitHub's `x-ratelimit-remaining` / `x-ratelimit-reset` (epoch seconds), when present. */
export function rateLimitHeaders(headers: IncomingHttpHeaders): PageResult['rateLimit'] | undefined {
  const remaining = headerOf(headers, 'x-ratelimit-remaining');
  if (remaining === undefined || !/^\d+$/.test(remaining)) return undefined;
  const reset = headerOf(headers, 'x-ratelimit-reset');
  return { remaining: Number(remaining), resetAt: reset && /^\d+$/.test(reset) ? new Date(Number(reset) * 1000) : null };
}

/** The `rel="next"` URL of an RFC 8288 Link header (GitHub pagination). */
export function nextLink(headers: IncomingHttpHeaders): string | null {
  const link = headerOf(headers, 'link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?([^";]+)"?/.exec(part.trim());
    if (m && m[2]!.split(/\s+/).includes('next')) return m[1]!;
  }
  return null;
}

/**
 * One provider call with the token: follows up to 3 redirects (each target passes the SSRF guard again,
 * and the token is not sent to another origin), and maps refusals to the errors the sync engine acts on.
 */
export async function providerRequest(ctx: ConnectorContext, url: string, init: GuardedRequest & { auth?: 'bearer' | 'none' } = {}): Promise<GuardedResponse> {
  let current = new URL(url);
  const origin = current.origin;
  for (let hop = 0; ; hop++) {
    const auth: Record<string, string> = init.auth !== 'none' && current.origin === origin ? { authorization: `Bearer ${ctx.token}` } : {};
    const res = await ctx.http.request(current, { ...init, headers: { accept: 'application/json', ...auth, ...(init.headers ?? {}) } });
    if (res.status >= 300 && res.status < 400 && res.headers.location && hop < MAX_REDIRECTS) {
      current = new URL(res.headers.location, current);
      continue;
    }
    throwForStatus(res, new Date());
    return res;
  }
}

export async function providerJson<T>(ctx: ConnectorContext, url: string, init: GuardedRequest = {}): Promise<{ body: T; res: GuardedResponse }> {
  const res = await providerRequest(ctx, url, init);
  try {
    return { body: JSON.parse(res.body) as T, res };
  } catch {
    throw new ProviderError(res.status, `${res.url.pathname} answered with a body that is not JSON`);
  }
}

function throwForStatus(res: GuardedResponse, now: Date): void {
  const { status, headers } = res;
  if (status >= 200 && status < 300) return;
  const where = res.url.pathname;
  const limit = rateLimitHeaders(headers);
  const later = retryAfter(headers, now);
  if (status === 429 || (status === 403 && (limit?.remaining === 0 || later || /rateLimitExceeded|rate limit/i.test(res.body)))) {
    const at = later ?? (limit?.remaining === 0 ? limit.resetAt : null) ?? new Date(now.getTime() + DEFAULT_RETRY_MS);
    throw new ProviderRateLimitError(at, `rate limited (${status}) on ${where}`);
  }
  if (status === 401 || status === 403) throw new ProviderAuthError(status, `the provider refused the token (${status}) on ${where}`);
  throw new ProviderError(status, `HTTP ${status} on ${where}`);
}
