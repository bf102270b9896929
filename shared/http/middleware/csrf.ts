import type { MiddlewareObj } from '@middy/core';
import { AppError } from '../../errors.ts';
import { safeEqual } from '../../crypto/hashing.ts';
import { header, type ApiRequest } from '../types.ts';

export const SESSION_COOKIE = 'ms_session';
export const CSRF_COOKIE = 'ms_csrf';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function readCookies(cookieHeader: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (cookieHeader ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    const raw = part.slice(i + 1).trim();
    try {
      out[name] = decodeURIComponent(raw);
    } catch {
      // Any cookie on the domain (analytics, another app) may hold a bare `%`: keep it as sent instead of failing the request.
      out[name] = raw;
    }
  }
  return out;
}

/**
 * Double-submit CSRF protection for cookie sessions only: a state-changing request authenticated by
 * the session cookie must echo the `ms_csrf` cookie in `X-CSRF-Token`. Header credentials (API keys,
 * bearer tokens) cannot be sent by a foreign page, so they skip the check.
 */
export const csrf = (): MiddlewareObj => ({
  before: (request) => {
    const event = (request as ApiRequest).event;
    if (SAFE.has(event.httpMethod)) return;
    if (header(event, 'x-api-key') || header(event, 'authorization')) return;
    const cookies = readCookies(header(event, 'cookie'));
    if (!cookies[SESSION_COOKIE]) return;
    const sent = header(event, 'x-csrf-token');
    if (!sent || !cookies[CSRF_COOKIE] || !safeEqual(sent, cookies[CSRF_COOKIE])) {
      throw new AppError('CSRF_TOKEN_INVALID', 403, 'Missing or invalid CSRF token');
    }
  },
});
