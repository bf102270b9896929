import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, createGuardedHttp, ProviderAuthError, ProviderError, ProviderRateLimitError, type ConnectorContext } from '#shared/integrations/index.ts';
import { fixture, startProviderServer, type ProviderHandler, type ProviderServer } from '../support/provider-server.ts';

const TOKEN = 'EwBwA8l6BAAUO9chh8cJscQLmU-local-test';
const NOTES_ID = '01BYE5RZ2Z3WNV2J3K4MSQZ6KE3HW5DNGM';
const onedrive = connectors.onedrive;
const http = createGuardedHttp({ allowPrivate: true });

const document = (name: string) => readFileSync(new URL(`../fixtures/documents/${name}`, import.meta.url));
/** Office files behind /content (real files made with LibreOffice), and one that is not a zip at all. */
const OFFICE: Record<string, Buffer> = {
  '01BYE5RZ4WXK6BXFRDTFH3HNRMQGH2BXVP': document('roadmap.docx'),
  '01BYE5RZ5BUDGETXLSXQ2WZLZ3Y7PB': document('budget.xlsx'),
  '01BYE5RZ6KICKOFFPPTXWZLZ3Y7PC': document('kickoff.pptx'),
  '01BYE5RZ3BROKENPPTXWZLZ3Y7PD': Buffer.from('PK\u0003\u0004 this download was cut short'),
};

/** Graph for one token: /me/drive/root/delta in two pages, /content redirecting to a pre-authenticated download host. */
const graphApi = (downloadBase: () => string): ProviderHandler => (req) => {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return { status: 401, body: fixture('onedrive', 'error-401') };
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/me/drive/root/delta') {
    const token = url.searchParams.get('token');
    if (token === 'expired') return { status: 410, body: fixture('onedrive', 'error-410-resync') };
    return { body: fixture('onedrive', token === 'MzslMjM0OyUyMzE7MztkZWxzdGE' ? 'delta-page2' : 'delta-page1') };
  }
  if (url.pathname === `/me/drive/items/${NOTES_ID}/content`) return { status: 302, headers: { location: `${downloadBase()}/download/notes?tempauth=abc` } };
  const content = /^\/me\/drive\/items\/([^/]+)\/content$/.exec(url.pathname);
  if (content && OFFICE[content[1]!]) return { status: 302, headers: { location: `${downloadBase()}/download/${content[1]}?tempauth=abc` } };
  return { status: 404, body: { error: { code: 'itemNotFound', message: 'The resource could not be found.' } } };
};

const ctxFor = (server: ProviderServer, overrides: Partial<ConnectorContext> = {}): ConnectorContext =>
  ({ http, token: TOKEN, baseUrl: server.url, options: {}, checkpoint: null, passStartedAt: '2026-01-04T00:00:00.000Z', ...overrides });

describe('OneDrive connector against a local replay of Microsoft Graph', () => {
  let graph: ProviderServer;
  let download: ProviderServer;
  beforeAll(async () => {
    download = await startProviderServer((req) => {
      const id = /^\/download\/([^/?]+)/.exec(req.url)?.[1];
      if (id && OFFICE[id]) return { body: OFFICE[id] };
      return { headers: { 'content-type': 'text/markdown' }, body: 'Standup: the payments team is blocked on the PCI audit.' };
    });
    graph = await startProviderServer(graphApi(() => download.url));
  });
  afterAll(async () => {
    await graph.close();
    await download.close();
  });

  it('downloads a text file through the /content redirect without sending the token to the download host', async () => {
    const page = await onedrive.listPage(ctxFor(graph), null);
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toMatchObject({ id: `item:${NOTES_ID}`, type: 'file' });
    expect(page.items[0]!.content).toContain('/Documents/standup-notes.md');
    expect(page.items[0]!.content).toContain('blocked on the PCI audit');
    expect(page.nextCursor).toBe(`${graph.url}/me/drive/root/delta?token=MzslMjM0OyUyMzE7MztkZWxzdGE`);
    expect(download.requests).toHaveLength(1);
    expect(download.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('follows @odata.nextLink, extracts Word, Excel and PowerPoint text, skips a corrupt file, reports deletions and keeps the @odata.deltaLink', async () => {
    download.requests.length = 0;
    const page = await onedrive.listPage(ctxFor(graph), `${graph.url}/me/drive/root/delta?token=MzslMjM0OyUyMzE7MztkZWxzdGE`);
    expect(page.items.map((i) => i.type)).toEqual(['document', 'spreadsheet', 'presentation', 'file_reference']);
    const [docx, xlsx, pptx, broken] = page.items;
    expect(docx!.content).toMatch(/^\[OneDrive document\] \/Documents\/Roadmap\.docx\n\nRoadmap 2026\s+Decision: the mobile app ships offline sync in Q2\./);
    expect(xlsx!.content).toBe('[OneDrive spreadsheet] /Finance/Budget.xlsx\n\n# Sheet: budget\nItem,Amount,Owner\nCloud hosting,12000,Ops\nTravel,3000,Sales');
    expect(pptx!.content).toContain('## Slide 2\nNext steps: book the penetration test with the platform team.');
    expect(pptx!.metadata).toMatchObject({ extracted: true, document_kind: 'pptx', truncated: false });
    expect(broken!.content).toBe('[OneDrive file] /Documents/Broken.pptx (application/vnd.openxmlformats-officedocument.presentationml.presentation; content not extracted: corrupt)');
    expect(broken!.metadata).toMatchObject({ extracted: false, skip_reason: 'corrupt' });
    // the pre-authenticated download host never sees the token
    expect(download.requests).toHaveLength(4);
    expect(download.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(page.deletedIds).toEqual(['item:01BYE5RZ7BHLQJ4FCGFZGJ3Y2WZLZ3Y7PA']);
    expect(page.nextCursor).toBeNull();
    expect(page.checkpoint).toBe(`${graph.url}/me/drive/root/delta?token=aTE09NjM1NTY2ODE3NTUwMTIwMDAw`);
  });

  it('starts over from the root when the delta token expired (410 resyncRequired)', async () => {
    graph.requests.length = 0;
    const page = await onedrive.listPage(ctxFor(graph, { checkpoint: `${graph.url}/me/drive/root/delta?token=expired` }), null);
    expect(graph.requests.map((r) => r.url)).toContain('/me/drive/root/delta');
    expect(page.items[0]!.id).toBe(`item:${NOTES_ID}`);
  });

  it('refuses a paging link to another origin, maps 401 and 429 with Retry-After', async () => {
    await expect(onedrive.listPage(ctxFor(graph), 'http://127.0.0.2:1/me/drive/root/delta?token=x')).rejects.toBeInstanceOf(ProviderError);
    await expect(onedrive.listPage(ctxFor(graph, { token: 'expired' }), null)).rejects.toBeInstanceOf(ProviderAuthError);
    const limited = await startProviderServer(() => ({ status: 429, headers: { 'retry-after': '10' }, body: fixture('onedrive', 'error-429') }));
    try {
      await expect(onedrive.listPage(ctxFor(limited), null)).rejects.toBeInstanceOf(ProviderRateLimitError);
    } finally {
      await limited.close();
    }
  });
});
