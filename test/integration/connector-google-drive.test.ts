import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, createGuardedHttp, ProviderAuthError, ProviderRateLimitError, type ConnectorContext } from '#shared/integrations/index.ts';
import { fixture, startProviderServer, type ProviderHandler, type ProviderServer } from '../support/provider-server.ts';

const TOKEN = 'ya29.a0AfH6SMBx-local-test-token';
const drive = connectors.google_drive;
const http = createGuardedHttp({ allowPrivate: true });

const EXPORTS: Record<string, string> = {
  '1ZdR3L3qP4Bkq8noWLJHSr_iBau0DNT4Kli4SxNc2YEo': 'Q1 goals: hire two SREs and cut p99 latency to 200 ms.',
  '1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms': 'Item,Amount\r\nCloud,12000\r\nTravel,3000',
  '1EpcVnE6ZQw2cjTfhRNmlT5AbjlWBQ0yT7rWyYpPlJ1s': 'Kick-off\n\nTeam charter and timeline',
};

const document = (name: string) => readFileSync(new URL(`../fixtures/documents/${name}`, import.meta.url));
/** Files Drive holds as uploaded binaries (alt=media downloads): a real PDF and a password-protected one. */
const MEDIA: Record<string, Buffer> = {
  '0B4fVvJq5ggvPdGVzdDBwZmxVQzA': document('roadmap.pdf'),
  '0B4fVvJq5ggvPbG9ja2VkUERGMDE': document('roadmap-encrypted.pdf'),
};

/** Drive v3 for one token: files.list in two pageToken pages, export and alt=media downloads. */
const driveApi: ProviderHandler = (req) => {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return { status: 401, body: fixture('google_drive', 'error-401') };
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/drive/v3/files') return { body: fixture('google_drive', url.searchParams.get('pageToken') ? 'files-page2' : 'files-page1') };
  const exported = /^\/drive\/v3\/files\/([^/]+)\/export$/.exec(url.pathname);
  if (exported && EXPORTS[exported[1]!]) return { headers: { 'content-type': `${url.searchParams.get('mimeType')}; charset=utf-8` }, body: EXPORTS[exported[1]!] };
  if (url.pathname === '/drive/v3/files/0B4fVvJq5ggvPbm90ZXMtdHh0' && url.searchParams.get('alt') === 'media') return { headers: { 'content-type': 'text/plain' }, body: 'Remember: the office moves to Utrecht in May.' };
  const media = /^\/drive\/v3\/files\/([^/]+)$/.exec(url.pathname);
  if (media && url.searchParams.get('alt') === 'media' && MEDIA[media[1]!]) return { headers: { 'content-type': 'application/pdf' }, body: MEDIA[media[1]!] };
  return { status: 404, body: fixture('google_drive', 'error-404') };
};

const ctxFor = (server: ProviderServer, overrides: Partial<ConnectorContext> = {}): ConnectorContext =>
  ({ http, token: TOKEN, baseUrl: server.url, options: {}, checkpoint: null, passStartedAt: '2026-01-04T00:00:00.000Z', ...overrides });

describe('Google Drive connector against a local replay of the Drive v3 API', () => {
  let server: ProviderServer;
  beforeAll(async () => {
    server = await startProviderServer(driveApi);
  });
  afterAll(() => server.close());

  it('exports Docs as text/plain and Sheets as text/csv, and pages on with nextPageToken', async () => {
    const page = await drive.listPage(ctxFor(server), null);
    expect(page.nextCursor).toBe('~!!~AI9FV7Tc4k5BiAVoWmFk2cvpWj1dlAqN');
    expect(page.items.map((i) => [i.type, i.id])).toEqual([['document', 'file:1ZdR3L3qP4Bkq8noWLJHSr_iBau0DNT4Kli4SxNc2YEo'], ['spreadsheet', 'file:1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms']]);
    expect(page.items[0]!.content).toContain('hire two SREs');
    expect(page.items[1]!.content).toContain('Cloud,12000');
    const exports = server.requests.filter((r) => r.url.includes('/export?')).map((r) => new URL(r.url, 'http://x').searchParams.get('mimeType'));
    expect(exports).toEqual(['text/plain', 'text/csv']);
    const list = new URL(server.requests[0]!.url, 'http://x');
    expect(list.searchParams.get('q')).toBe("trashed = false and mimeType != 'application/vnd.google-apps.folder'");
    expect(list.searchParams.get('fields')).toContain('nextPageToken');
  });

  it("exports Slides, extracts a PDF's text, skips an encrypted and an oversized PDF with the reason, and ends the pass", async () => {
    server.requests.length = 0;
    const page = await drive.listPage(ctxFor(server), '~!!~AI9FV7Tc4k5BiAVoWmFk2cvpWj1dlAqN');
    expect(new URL(server.requests[0]!.url, 'http://x').searchParams.get('pageToken')).toBe('~!!~AI9FV7Tc4k5BiAVoWmFk2cvpWj1dlAqN');
    expect(page.items.map((i) => i.type)).toEqual(['presentation', 'pdf', 'file_reference', 'text', 'file_reference']);
    const [, pdf, locked, notes, scanned] = page.items;
    expect(pdf!.content).toMatch(/^\[Google Drive pdf\] Signed contract\.pdf\n\nRoadmap 2026\s+Decision: the mobile app ships offline sync in Q2\./);
    expect(pdf!.metadata).toMatchObject({ extracted: true, document_kind: 'pdf', pages: 1, pages_read: 1, truncated: false });
    expect(locked!.content).toBe('[Google Drive file] Board minutes (locked).pdf (application/pdf; content not extracted: encrypted)');
    expect(locked!.metadata).toMatchObject({ extracted: false, skip_reason: 'encrypted' });
    expect(notes!.content).toContain('Utrecht');
    // 70 MB by Drive's own count: refused without a download
    expect(scanned!.metadata).toMatchObject({ extracted: false, skip_reason: 'too_large' });
    expect(server.requests.some((r) => r.url.includes('0B4fVvJq5ggvPaHVnZVNjYW4wMQ'))).toBe(false);
    expect(server.requests.filter((r) => r.url.includes('alt=media')).every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(page.nextCursor).toBeNull();
    expect(page.checkpoint).toBe('2026-01-04T00:00:00.000Z');
  });

  it('stops a download at the connection\'s narrower size limit and records why', async () => {
    const page = await drive.listPage(ctxFor(server, { options: { document_limits: { maxBytes: 5000 } } }), '~!!~AI9FV7Tc4k5BiAVoWmFk2cvpWj1dlAqN');
    expect(page.items.find((i) => i.id === 'file:0B4fVvJq5ggvPdGVzdDBwZmxVQzA')!.metadata).toMatchObject({ extracted: false, skip_reason: 'too_large' });
    // a limit above the default is ignored: options can only narrow the bounds
    const wide = await drive.listPage(ctxFor(server, { options: { document_limits: { maxPages: 10_000 } } }), '~!!~AI9FV7Tc4k5BiAVoWmFk2cvpWj1dlAqN');
    expect(wide.items.find((i) => i.id === 'file:0B4fVvJq5ggvPdGVzdDBwZmxVQzA')!.type).toBe('pdf');
  });

  it('lists only files modified after the checkpoint on an incremental pass', async () => {
    server.requests.length = 0;
    await drive.listPage(ctxFor(server, { checkpoint: '2026-01-02T12:00:00.000Z' }), null);
    expect(new URL(server.requests[0]!.url, 'http://x').searchParams.get('q')).toContain("modifiedTime > '2026-01-02T12:00:00.000Z'");
  });

  it('maps 401 to ProviderAuthError and 403 userRateLimitExceeded to a rescheduling error', async () => {
    await expect(drive.listPage(ctxFor(server, { token: 'ya29.expired' }), null)).rejects.toBeInstanceOf(ProviderAuthError);
    const limited = await startProviderServer(() => ({ status: 403, body: fixture('google_drive', 'error-403-rate-limit') }));
    try {
      await expect(drive.listPage(ctxFor(limited), null)).rejects.toBeInstanceOf(ProviderRateLimitError);
    } finally {
      await limited.close();
    }
  });
});
