import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { bearer, keyWithScopes, sessionWithRole } from '../support/recall-helpers.ts';

/** Relays what the outbox holds and runs the local queue until nothing is left. */
async function deliverAll(server: TestServer): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const { relayed } = await server.app.relay.relayNow();
    await server.queue!.runUntilIdle();
    if (relayed === 0) return;
  }
}

const page = (title: string, body: string, links: string[] = []) =>
  `<!doctype html><html><head><title>${title}</title><style>body{color:red}</style><script>var tracking = "SCRIPT_TEXT";</script></head>` +
  `<body><nav>${links.map((l) => `<a href="${l}">${l}</a>`).join(' ')}</nav><main><h1>${title}</h1><p>${body}</p></main></body></html>`;

/** A small public site: robots.txt forbids /private/, ten chained articles, an oversized page, an off-site redirect. */
async function startSite(): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const pages: Record<string, string> = {
    '/': page('Acme handbook', 'Welcome to the Acme engineering handbook.', ['/private/salaries', '/about', '/big', '/elsewhere', '/articles/1', 'https://other.example/offsite', '#top', 'mailto:a@b.c']),
    '/about': page('About Acme', 'Acme builds hydroponic greenhouse controllers in Rotterdam.'),
    '/private/salaries': page('Salaries', 'CONFIDENTIAL_SALARY_TABLE'),
    '/big': page('Huge', 'x'.repeat(2_200_000)),
  };
  for (let i = 1; i <= 10; i++) pages[`/articles/${i}`] = page(`Article ${i}`, `Article number ${i} explains irrigation schedule ${i}.`, i < 10 ? [`/articles/${i + 1}`] : []);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    paths.push(path);
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('User-agent: *\nDisallow: /private/\n');
      return;
    }
    if (path === '/elsewhere') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
      return;
    }
    const html = pages[path];
    res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

const crawlerMemories = (server: TestServer, tenantId: string) =>
  server.app.db.kysely.selectFrom('memories').select(['id', 'metadata']).where('tenant_id', '=', tenantId).where('source', '=', 'crawler').execute();

describe('web crawler over HTTP (private targets allowed for the local site)', () => {
  let server: TestServer;
  let site: Awaited<ReturnType<typeof startSite>>;
  let tenant: { apiKey: string; tenantId: string; projectId: string };

  beforeAll(async () => {
    site = await startSite();
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true' });
    tenant = await server.newTenant('Crawler A');
  });
  afterAll(async () => {
    await server?.stop();
    await site?.close();
  });

  it('crawls breadth-first within the origin, honours robots.txt, skips oversized pages and off-site redirects', async () => {
    const res = await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { url: `${site.url}/`, max_pages: 4, end_user_id: 'dana' } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'queued', max_pages: 4, end_user_id: 'dana' });
    await deliverAll(server);

    const job = await server.call('GET', `/api/v1/crawler/jobs/${res.body.id}`, { headers: keyHeaders(tenant.apiKey) });
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({ status: 'completed', pages_fetched: 4, last_error: null });
    const reasons = Object.fromEntries(job.body.skipped.map((s: any) => [new URL(s.url).pathname, s.reason]));
    expect(reasons['/private/salaries']).toBe('disallowed by robots.txt');
    expect(reasons['/big']).toMatch(/larger than/);
    expect(reasons['/elsewhere']).toMatch(/another origin/);
    expect(site.paths).not.toContain('/private/salaries');

    const stored = await crawlerMemories(server, tenant.tenantId);
    expect(stored.map((m: any) => new URL(m.metadata.url).pathname).sort()).toEqual(['/', '/about', '/articles/1', '/articles/2']);
    const texts = await server.call('GET', '/memory/export', { headers: keyHeaders(tenant.apiKey, 'dana') });
    expect(texts.status).toBe(200);
    const all = JSON.stringify(texts.body);
    expect(all).toContain('Rotterdam');
    expect(all).not.toContain('CONFIDENTIAL_SALARY_TABLE');
    expect(all).not.toContain('SCRIPT_TEXT');
  });

  it('stores pages as memories the end user can recall', async () => {
    const q = await server.call('POST', '/memory/query', { headers: keyHeaders(tenant.apiKey, 'dana'), body: { query: 'where are the greenhouse controllers built?', k: 2 } });
    expect(q.status).toBe(200);
    expect(q.body.memories[0].text).toContain('Rotterdam');
    expect(q.body.memories[0].source).toBe('crawler');
  });

  it('stops fetching at max_pages', async () => {
    site.paths.length = 0;
    const res = await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { url: `${site.url}/articles/1`, max_pages: 3, end_user_id: 'erin' } });
    await deliverAll(server);
    const job = await server.call('GET', `/api/v1/crawler/jobs/${res.body.id}`, { headers: keyHeaders(tenant.apiKey) });
    expect(job.body.pages_fetched).toBe(3);
    expect(site.paths.filter((p) => p.startsWith('/articles/'))).toEqual(['/articles/1', '/articles/2', '/articles/3']);
  });

  it('refuses bad input (422) without creating a job, callers without credentials (401), scope or role (403), and hides jobs from other tenants', async () => {
    const before = await server.app.db.kysely.selectFrom('crawl_jobs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const body = { url: `${site.url}/`, max_pages: 2, end_user_id: 'dana' };
    expect((await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { ...body, max_pages: 101 } })).status).toBe(422);
    expect((await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { ...body, url: 'ftp://example.com/' } })).status).toBe(422);
    expect((await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { url: body.url, max_pages: 2 } })).status).toBe(422);
    expect((await server.call('POST', '/api/v1/crawler/jobs', { body })).status).toBe(401);
    const readOnly = await keyWithScopes(server, tenant.tenantId, ['memories:read']);
    expect((await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(readOnly), body })).status).toBe(403);
    const viewer = await sessionWithRole(server, tenant.tenantId, 'viewer');
    expect((await server.call('POST', '/api/v1/crawler/jobs', { headers: bearer(viewer), body })).status).toBe(403);
    const after = await server.app.db.kysely.selectFrom('crawl_jobs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));

    const mine = await server.app.db.kysely.selectFrom('crawl_jobs').select('id').where('tenant_id', '=', tenant.tenantId).executeTakeFirstOrThrow();
    const other = await server.newTenant('Crawler B');
    expect((await server.call('GET', `/api/v1/crawler/jobs/${mine.id}`, { headers: keyHeaders(other.apiKey) })).status).toBe(404);
  });
});

describe('web crawler with the SSRF guard on (ALLOW_PRIVATE_WEBHOOK_TARGETS=false)', () => {
  let server: TestServer;
  let site: Awaited<ReturnType<typeof startSite>>;

  beforeAll(async () => {
    site = await startSite();
    server = await startTestServer({ ALLOW_PRIVATE_WEBHOOK_TARGETS: 'false' });
  });
  afterAll(async () => {
    await server?.stop();
    await site?.close();
  });

  it('refuses loopback, private and metadata targets before any request is made', async () => {
    const tenant = await server.newTenant('Crawler guarded');
    for (const url of [`${site.url}/`, 'http://10.0.0.8/', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/']) {
      const res = await server.call('POST', '/api/v1/crawler/jobs', { headers: keyHeaders(tenant.apiKey), body: { url, max_pages: 2, end_user_id: 'dana' } });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('URL_NOT_ALLOWED');
    }
    expect(site.paths).toEqual([]);
    const jobs = await server.app.db.kysely.selectFrom('crawl_jobs').select('id').where('tenant_id', '=', tenant.tenantId).execute();
    expect(jobs).toEqual([]);
  });

  it('fails a queued job whose host turned private by crawl time, without fetching it', async () => {
    const tenant = await server.newTenant('Crawler rebinding');
    // Arranged as if DNS answered a public address at creation and a private one at crawl time.
    const userId = await server.app.identity.resolveEndUser(tenant.tenantId, 'dana');
    await server.app.db.kysely.insertInto('crawl_jobs').values({ id: 'crj_000000000000000000000001', tenant_id: tenant.tenantId, project_id: tenant.projectId, user_id: userId, end_user_id: 'dana', environment: 'production', url: `${site.url}/`, max_pages: 2, skipped: JSON.stringify([]), last_error: null, created_by: 'test', created_at: new Date() }).execute();
    await server.app.integrations.crawl(tenant.tenantId, 'crj_000000000000000000000001');
    const job = await server.call('GET', '/api/v1/crawler/jobs/crj_000000000000000000000001', { headers: keyHeaders(tenant.apiKey) });
    expect(job.body.status).toBe('failed');
    expect(job.body.last_error).toMatch(/SSRF guard.*loopback/);
    expect(site.paths).toEqual([]);
  });
});
