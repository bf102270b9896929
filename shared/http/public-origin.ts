import type { RouteContext } from './types.ts';

/**
 * This API's public origin as the caller reached it, for absolute URLs the protocols need (SCIM
 * `meta.location`, the default OIDC redirect URI). API Gateway's own hostnames carry the stage in
 * the path; custom domains and the local server do not.
 */
export function publicOrigin(ctx: Pick<RouteContext, 'headers' | 'event'>): string {
  const host = (ctx.headers['x-forwarded-host'] ?? ctx.headers.host ?? 'localhost').split(',')[0].trim();
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host);
  const proto = (ctx.headers['x-forwarded-proto'] ?? (loopback ? 'http' : 'https')).split(',')[0].trim();
  const stage = ctx.event.requestContext?.stage;
  const stagePath = /\.execute-api\.[a-z0-9-]+\.amazonaws\.com$/.test(host) && stage ? `/${stage}` : '';
  return `${proto}://${host}${stagePath}`;
}
