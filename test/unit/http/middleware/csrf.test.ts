import { describe, expect, it } from 'vitest';
import { csrf, readCookies } from '#shared/http/middleware/csrf.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { apiEvent } from '../../../support/events.ts';
import { bodyJson, handlerWith, silentLogger } from '../middy-harness.ts';

const api = handlerWith([csrf(), errorHandler({ logger: silentLogger() })]);

const SESSION = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJl';
const TOKEN = 'Zm9yLWNzcmYtZG91YmxlLXN1Ym1pdA';
const cookie = `ms_session=${SESSION}; ms_csrf=${TOKEN}`;

const request = (method: string, headers: Record<string, string>) =>
  api(apiEvent({ method, path: '/org/projects', headers, body: method === 'GET' ? undefined : { name: 'Research' } }));

describe('CSRF middleware', () => {
  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('rejects a cookie-session %s without X-CSRF-Token with 403 CSRF_TOKEN_INVALID', async (method) => {
    const res = await request(method, { Cookie: cookie });
    expect(res.statusCode).toBe(403);
    expect(bodyJson(res).error.code).toBe('CSRF_TOKEN_INVALID');
  });

  it('rejects a cookie-session write whose X-CSRF-Token does not match the cookie', async () => {
    for (const wrong of [`${TOKEN}x`, TOKEN.slice(0, -1), 'completely-different-token']) {
      const res = await request('POST', { Cookie: cookie, 'X-CSRF-Token': wrong });
      expect(res.statusCode).toBe(403);
    }
  });

  it('rejects a token sent without the ms_csrf cookie to compare it with', async () => {
    const res = await request('POST', { Cookie: `ms_session=${SESSION}`, 'X-CSRF-Token': TOKEN });
    expect(res.statusCode).toBe(403);
  });

  it('accepts a cookie-session write that echoes the ms_csrf cookie, header name in any case', async () => {
    expect((await request('POST', { Cookie: cookie, 'X-CSRF-Token': TOKEN })).statusCode).toBe(200);
    expect((await request('DELETE', { cookie, 'x-csrf-token': TOKEN })).statusCode).toBe(200);
  });

  it.each(['GET', 'HEAD', 'OPTIONS'])('lets a safe %s through without a token', async (method) => {
    expect((await request(method, { Cookie: cookie })).statusCode).toBe(200);
  });

  it('skips the check when the credential is a header a foreign page cannot send', async () => {
    expect((await request('POST', { Cookie: cookie, 'X-API-Key': 'ms_live_0123456789abcdefABCDEF' })).statusCode).toBe(200);
    expect((await request('POST', { Cookie: cookie, Authorization: `Bearer ${SESSION}` })).statusCode).toBe(200);
  });

  it('does not check writes that carry no session cookie', async () => {
    expect((await request('POST', {})).statusCode).toBe(200);
    expect((await request('POST', { Cookie: 'theme=dark; ms_csrf=abc' })).statusCode).toBe(200);
  });

  it('still enforces the token when another cookie on the domain is not valid percent-encoding', async () => {
    const withForeign = `_ga=GA1.2.50%off; ${cookie}`;
    expect((await request('POST', { Cookie: withForeign })).statusCode).toBe(403);
    expect((await request('POST', { Cookie: withForeign, 'X-CSRF-Token': TOKEN })).statusCode).toBe(200);
  });
});

describe('readCookies', () => {
  it('parses name=value pairs, trimming spaces and decoding values', () => {
    expect(readCookies(' a=1 ; b=hello%20world;c=x=y')).toEqual({ a: '1', b: 'hello world', c: 'x=y' });
  });

  it('keeps a value that is not valid percent-encoding as sent', () => {
    expect(readCookies('promo=50%off; ms_csrf=t')).toEqual({ promo: '50%off', ms_csrf: 't' });
  });

  it('answers an empty object for a missing header', () => {
    expect(readCookies(undefined)).toEqual({});
  });
});
