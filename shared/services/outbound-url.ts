import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Loopback, private, link-local (cloud metadata), CGNAT, unique-local and unspecified ranges. */
const PRIVATE = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3]] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE.addSubnet(net, bits, 'ipv6');

const isPrivateAddress = (address: string): boolean => {
  const family = isIP(address);
  if (family === 6 && address.toLowerCase().startsWith('::ffff:')) return isPrivateAddress(address.slice(7));
  return family === 4 ? PRIVATE.check(address, 'ipv4') : family === 6 ? PRIVATE.check(address, 'ipv6') : true;
};

export class OutboundUrlError extends Error {
  override readonly name = 'OutboundUrlError';
}

/**
 * Throws unless `url` is https (http only when private targets are allowed) and every address its host
 * resolves to is public. Outbound calls whose URL comes from tenant input (OIDC issuers and the
 * endpoints their discovery documents name) pass through here so a tenant cannot make the server
 * call its own network or the metadata service.
 */
export async function assertPublicUrl(raw: string, opts: { allowPrivate: boolean }): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OutboundUrlError('not a URL');
  }
  if (url.protocol !== 'https:' && !(opts.allowPrivate && url.protocol === 'http:')) throw new OutboundUrlError('only https URLs are allowed');
  if (url.username || url.password) throw new OutboundUrlError('URLs with credentials are not allowed');
  if (opts.allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  if (addresses.length === 0) throw new OutboundUrlError(`cannot resolve ${host}`);
  if (addresses.some(isPrivateAddress)) throw new OutboundUrlError(`${host} resolves to a private address`);
  return url;
}
