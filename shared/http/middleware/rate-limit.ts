import type { MiddlewareObj } from '@middy/core';
import type { RateLimiter } from '../../services/rate-limiter.ts';
import { stateOf, type ApiRequest } from '../types.ts';

/** Per-key (or per-IP when anonymous) limits; headers on every answer. Off unless enabled. */
export const rateLimit = (opts: { limiter: RateLimiter; enabled: boolean }): MiddlewareObj => {
  const stamp = (request: ApiRequest) => {
    const rl = stateOf(request).rateLimit;
    if (!rl || !request.response) return;
    request.response.headers = {
      'X-RateLimit-Limit': String(rl.limit),
      'X-RateLimit-Remaining': String(rl.remaining),
      'X-RateLimit-Reset': String(rl.reset),
      ...(request.response.headers ?? {}),
    };
  };
  return {
    before: async (request) => {
      if (!opts.enabled) return;
      const req = request as ApiRequest;
      const state = stateOf(req);
      const p = state.principal;
      const isHealth = req.event.path === '/health';
      const subject = p ? (p.apiKeyId ? `key:${p.apiKeyId}` : `acct:${p.accountId}`) : `ip:${req.event.requestContext?.identity?.sourceIp ?? 'unknown'}`;
      const tier = isHealth ? 'health' : p ? (p.kind === 'api_key' ? p.rateLimitTier : 'pro') : 'anonymous';
      const decision = await opts.limiter.check(subject, tier);
      if (decision) state.rateLimit = decision;
    },
    after: (request) => stamp(request as ApiRequest),
    onError: (request) => stamp(request as ApiRequest),
  };
};
