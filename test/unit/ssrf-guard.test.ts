import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockedAddressReason, createOutboundHttp, SsrfBlockedError, verifyOutboundUrl, type HostResolver } from '#shared/net/ssrf-guard.ts';

/** A resolver answering from a table, counting its calls; unknown names fail like NXDOMAIN. */
function fakeDns(table: Record<string, string[]>) {
  const calls: string[] = [];
  const resolve: HostResolver = async (host) => {
    calls.push(host);
    const answers = table[host];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, calls };
}

const BLOCKED = [
  '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.0.1', '192.168.255.255',
  '127.0.0.1', '127.255.255.254', '169.254.0.1', '169.254.169.254', '100.64.0.1', '100.127.255.255',
  '0.0.0.0', '0.1.2.3', '224.0.0.1', '255.255.255.255', '198.18.0.1',
  '::1', '::', 'fe80::1', 'fe80::1%eth0', 'febf:ffff::1', 'fc00::1', 'fd12:3456::1', 'fd00:ec2::254',
  '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:c0a8:0101',
  '64:ff9b::a9fe:a9fe', '64:ff9b::127.0.0.1', '2002:7f00:1::1', '2002:a9fe:a9fe::', '::127.0.0.1', 'ff02::1',
];
const PUBLIC = [
  '8.8.8.8', '1.1.1.1', '93.184.216.34', '11.0.0.1', '172.15.255.255', '172.32.0.0', '192.167.255.255', '192.169.0.1',
  '100.63.255.255', '100.128.0.0', '169.253.255.255', '169.255.0.1', '126.255.255.255', '128.0.0.1',
  '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1',
];

describe('blockedAddressReason', () => {
  it.each(BLOCKED)('refuses %s', (address) => {
    expect(blockedAddressReason(address)).toBeTypeOf('string');
  });

  it.each(PUBLIC)('lets the public address %s through', (address) => {
    expect(blockedAddressReason(address)).toBeUndefined();
  });

  it('names the IPv4 address hidden in an IPv4-mapped IPv6 address', () => {
    expect(blockedAddressReason('::ffff:169.254.169.254')).toContain('169.254.169.254');
  });

  it('refuses anything that is not an IP address', () => {
    expect(blockedAddressReason('localhost')).toBe('not an IP address');
  });
});

describe('verifyOutboundUrl', () => {
  const strict = (dns = fakeDns({})) => ({ allowPrivate: false, resolve: dns.resolve });

  it.each([
    ['ftp://example.com/x', 'only http and https'],
    ['file:///etc/passwd', 'only http and https'],
    ['gopher://example.com', 'only http and https'],
    ['not a url', 'not a valid URL'],
    ['https://user:pass@example.com/', 'credentials'],
  ])('refuses %s before any DNS lookup', async (url, reason) => {
    const dns = fakeDns({ 'example.com': ['93.184.216.34'] });
    await expect(verifyOutboundUrl(url, strict(dns))).rejects.toThrow(reason);
    expect(dns.calls).toEqual([]);
  });

  it.each([
    'http://127.0.0.1:8080/hook', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://2130706433/', 'http://0x7f.0.0.1/',
    'http://017700000001/', 'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://0.0.0.0:9000/', 'http://100.100.100.200/',
  ])('refuses the literal address in %s', async (url) => {
    await expect(verifyOutboundUrl(url, strict())).rejects.toBeInstanceOf(SsrfBlockedError);
  });

  it('refuses a host name whose DNS answer points inside the network', async () => {
    const dns = fakeDns({ 'hooks.customer.test': ['10.1.2.3'] });
    await expect(verifyOutboundUrl('https://hooks.customer.test/in', strict(dns))).rejects.toThrow(/non-public address \(private\)/);
  });

  it('refuses a host name when any one of its addresses is internal', async () => {
    const dns = fakeDns({ 'mixed.test': ['93.184.216.34', '::ffff:169.254.169.254'] });
    await expect(verifyOutboundUrl('https://mixed.test/', strict(dns))).rejects.toThrow(/non-public/);
  });

  it('refuses a host name that does not resolve', async () => {
    await expect(verifyOutboundUrl('https://nowhere.test/', strict())).rejects.toThrow('cannot resolve nowhere.test');
  });

  it('accepts a host name with only public addresses and returns the address to connect to', async () => {
    const dns = fakeDns({ 'hooks.customer.test': ['93.184.216.34', '2606:4700:4700::1111'] });
    const target = await verifyOutboundUrl('https://hooks.customer.test/in', strict(dns));
    expect(target).toMatchObject({ address: '93.184.216.34', family: 4 });
    expect(target.url.hostname).toBe('hooks.customer.test');
  });

  it('lets private targets through only when allowed', async () => {
    const dns = fakeDns({ 'dev.test': ['127.0.0.1'] });
    await expect(verifyOutboundUrl('http://dev.test/', { allowPrivate: true, resolve: dns.resolve })).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(verifyOutboundUrl('http://dev.test/', { allowPrivate: false, resolve: dns.resolve })).rejects.toThrow(/loopback/);
  });
});

describe('createOutboundHttp().send', () => {
  let server: Server;
  let port: number;
  const seen: Array<{ url: string; host: string | undefined; body: string }> = [];
  const readBody = async (req: IncomingMessage) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    return body;
  };

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      seen.push({ url: req.url ?? '', host: req.headers.host, body: await readBody(req) });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/elsewhere` }).end();
      } else if (req.url === '/hang') {
        // never answers: the client's timeout must end the attempt
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('connects to the address it verified, never asking DNS a second time (no rebinding window)', async () => {
    // The name resolves once to 127.0.0.1; any second lookup would fail because the table has one answer only.
    let answers = [['127.0.0.1'], ['10.9.9.9']];
    const calls: string[] = [];
    const resolve: HostResolver = async (host) => {
      calls.push(host);
      const next = answers.shift() ?? [];
      return next.map((address) => ({ address, family: 4 }));
    };
    const http = createOutboundHttp({ allowPrivate: true, resolve });
    const before = seen.length;
    const res = await http.send(`http://rebind.test:${port}/hook`, { headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    expect(calls).toEqual(['rebind.test']);
    expect(seen.slice(before)).toEqual([{ url: '/hook', host: `rebind.test:${port}`, body: '{"a":1}' }]);
    answers = [];
  });

  it('sends nothing when the DNS answer points inside and private targets are not allowed', async () => {
    const dns = fakeDns({ 'rebind.test': ['127.0.0.1'] });
    const http = createOutboundHttp({ allowPrivate: false, resolve: dns.resolve });
    const before = seen.length;
    await expect(http.send(`http://rebind.test:${port}/hook`, { headers: {}, body: '{}' })).rejects.toBeInstanceOf(SsrfBlockedError);
    expect(seen.length).toBe(before);
  });

  it('returns a redirect as it is, without following it', async () => {
    const http = createOutboundHttp({ allowPrivate: true });
    const before = seen.length;
    const res = await http.send(`http://127.0.0.1:${port}/redirect`, { headers: {}, body: '{}' });
    expect(res.status).toBe(302);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/redirect']);
  });

  it('gives up on a target that does not answer within the timeout', async () => {
    const http = createOutboundHttp({ allowPrivate: true });
    await expect(http.send(`http://127.0.0.1:${port}/hang`, { headers: {}, body: '{}', timeoutMs: 200 })).rejects.toThrow('timed out after 200 ms');
  });

  it('keeps connections alive per verified address: one socket for many requests, a new one when DNS moves', async () => {
    const sockets: string[] = [];
    const local = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    local.on('connection', (socket) => sockets.push(socket.localAddress ?? ''));
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    const localPort = (local.address() as AddressInfo).port;
    let answer = '127.0.0.1';
    const http = createOutboundHttp({ allowPrivate: true, resolve: async () => [{ address: answer, family: 4 }] });
    try {
      for (let i = 0; i < 5; i++) expect((await http.send(`http://pooled.test:${localPort}/hook`, { headers: {}, body: `{"i":${i}}` })).status).toBe(200);
      expect(sockets).toHaveLength(1);
      // the name now resolves elsewhere: the pooled socket to the old address is not used for it
      answer = '127.0.0.2';
      await expect(http.send(`http://pooled.test:${localPort}/hook`, { headers: {}, body: '{}' })).rejects.toThrow(/ECONNREFUSED/);
      expect(sockets).toHaveLength(1);
    } finally {
      http.close();
      local.closeAllConnections();
      await new Promise((resolve) => local.close(resolve));
    }
  });

  it('retries once on a new connection when a kept-alive socket was closed under it', async () => {
    const perSocket = new Map<unknown, number>();
    let answered = 0;
    const local = createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      // the second request on a connection finds it reset, as when a server's idle timeout fires
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on('end', () => {
        answered += 1;
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    const localPort = (local.address() as AddressInfo).port;
    const http = createOutboundHttp({ allowPrivate: true });
    try {
      expect((await http.send(`http://127.0.0.1:${localPort}/a`, { headers: {}, body: '{}' })).status).toBe(200);
      expect((await http.send(`http://127.0.0.1:${localPort}/b`, { headers: {}, body: '{}' })).status).toBe(200);
      expect(answered).toBe(2);
      expect(perSocket.size).toBe(2);
    } finally {
      http.close();
      local.closeAllConnections();
      await new Promise((resolve) => local.close(resolve));
    }
  });
});
