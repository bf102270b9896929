import type { MiddlewareObj } from '@middy/core';
import httpSecurityHeaders from '@middy/http-security-headers';
import type { ApiRequest } from '../types.ts';

/**
 * Helmet-style headers from @middy/http-security-headers on every response, errors included, plus
 * `Cache-Control: no-store` because responses carry private memories.
 */
export const securityHeaders = (): MiddlewareObj => {
  const inner = httpSecurityHeaders({}) as Required<Pick<MiddlewareObj, 'after' | 'onError'>>;
  // The helmet port marks removed headers (Server, X-Powered-By) as undefined and leaves unset ones empty.
  const noStore = (request: ApiRequest) => {
    if (!request.response) return;
    const headers = { 'Cache-Control': 'no-store', ...(request.response.headers ?? {}) };
    request.response.headers = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  };
  return {
    after: async (request) => {
      // A route serving HTML (the /docs page) may set its own CSP; the helmet default (`default-src 'none'; sandbox`) would blank it.
      const own = request.response?.headers?.['Content-Security-Policy'];
      await inner.after(request);
      if (own) request.response.headers['Content-Security-Policy'] = own;
      noStore(request as ApiRequest);
    },
    onError: async (request) => {
      if (!request.response) return;
      await inner.onError(request);
      noStore(request as ApiRequest);
    },
  };
};
