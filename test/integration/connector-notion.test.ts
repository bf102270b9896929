import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, createGuardedHttp, ProviderAuthError, ProviderRateLimitError, type ConnectorContext } from '#shared/integrations/index.ts';
import { fixture, startProviderServer, type ProviderHandler, type ProviderServer } from '../support/provider-server.ts';

const TOKEN = 'secret_7f3a9b2c4d5e6f708192a3b4c5d6e7f8';
const PAGE_ID = '59833787-2cf9-4fdf-8782-e53db20768a5';
const TODO_ID = 'f3c1a8a0-1d7e-4b8e-9f0e-7c4b2a1d9e11';
const notion = connectors.notion;
const http = createGuardedHttp({ allowPrivate: true });

/** The Notion API for one integration token, from the reference's examples. */
const notionApi: ProviderHandler = (req) => {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return { status: 401, body: fixture('notion', 'error-401') };
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/v1/search') {
    return { body: fixture('notion', JSON.parse(req.body).start_cursor ? 'search-page2' : 'search-page1') };
  }
  if (url.pathname === `/v1/blocks/${PAGE_ID}/children`) return { body: fixture('notion', url.searchParams.get('start_cursor') ? 'blocks-page2' : 'blocks-page1') };
  if (url.pathname === `/v1/blocks/${TODO_ID}/children`) return { body: fixture('notion', 'blocks-nested') };
  return { status: 404, body: fixture('notion', 'error-404') };
};

const ctxFor = (server: ProviderServer, overrides: Partial<ConnectorContext> = {}): ConnectorContext =>
  ({ http, token: TOKEN, baseUrl: server.url, options: {}, checkpoint: null, passStartedAt: '2026-01-04T00:00:00.000Z', ...overrides });

describe('Notion connector against a local replay of the Notion API', () => {
  let server: ProviderServer;
  beforeAll(async () => {
    server = await startProviderServer(notionApi);
  });
  afterAll(() => server.close());

  it('turns the first search page into Markdown pages (paged and nested blocks) and database summaries', async () => {
    const page = await notion.listPage(ctxFor(server), null);
    expect(page.nextCursor).toBe('e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6');
    expect(page.items.map((i) => i.id)).toEqual([`page:${PAGE_ID}`, 'database:bc1211ca-e3f1-4939-ae34-5260b16f627c']);
    expect(page.items[0]!.content).toBe('# Launch plan\n\n## Goals\nShip the beta to **forty design partners** by March.\n- [x] Book the launch venue\n  - Venue: Pier 27, capacity 300');
    expect(page.items[0]!.url).toBe('https://www.notion.so/Launch-plan-598337872cf94fdf8782e53db20768a5');
    expect(page.items[1]!.content).toContain('[Notion database] Grocery List');
    expect(page.items[1]!.content).toContain('Properties: Name, Price');

    const search = server.requests.find((r) => r.url === '/v1/search')!;
    expect(search.headers['notion-version']).toBe('2022-06-28');
    expect(JSON.parse(search.body)).toMatchObject({ sort: { direction: 'descending', timestamp: 'last_edited_time' } });
    expect(server.requests.some((r) => r.url.includes('start_cursor=7a1a0f47-5a3b-4d4c-9a28-0d2f3c6e4b11'))).toBe(true);
  });

  it('follows start_cursor to the last page, reports trashed pages as deleted and ends the pass with a checkpoint', async () => {
    server.requests.length = 0;
    const last = await notion.listPage(ctxFor(server), 'e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6');
    expect(JSON.parse(server.requests[0]!.body).start_cursor).toBe('e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6');
    expect(last.items).toEqual([]);
    expect(last.deletedIds).toEqual(['page:13d6da82-2f93-43fa-8ec1-4c89b8184d5a']);
    expect(last.nextCursor).toBeNull();
    expect(last.checkpoint).toBe('2026-01-04T00:00:00.000Z');
  });

  it('stops an incremental pass at the first object edited before the checkpoint', async () => {
    const page = await notion.listPage(ctxFor(server, { checkpoint: '2026-01-02T12:00:00.000Z' }), null);
    expect(page.items.map((i) => i.id)).toEqual([`page:${PAGE_ID}`]);
    expect(page.nextCursor).toBeNull();
  });

  it('maps 401 to ProviderAuthError and 429 rate_limited with Retry-After to a rescheduling error', async () => {
    await expect(notion.listPage(ctxFor(server, { token: 'secret_revoked' }), null)).rejects.toBeInstanceOf(ProviderAuthError);
    const limited = await startProviderServer(() => ({ status: 429, headers: { 'retry-after': '30' }, body: fixture('notion', 'error-429') }));
    try {
      const before = Date.now();
      const error = (await notion.listPage(ctxFor(limited), null).catch((e: unknown) => e)) as ProviderRateLimitError;
      expect(error).toBeInstanceOf(ProviderRateLimitError);
      expect(error.retryAt.getTime()).toBeGreaterThanOrEqual(before + 29_000);
    } finally {
      await limited.close();
    }
  });
});
