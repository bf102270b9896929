import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { documentKind, extractDocumentText } from '#shared/text/document-text.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/documents/${name}`, import.meta.url)));

/** Real files made with LibreOffice and qpdf (test/fixtures/documents/README.md), read with the real libraries. */
describe('document text extraction', () => {
  it('reads the text of a PDF page by page', async () => {
    const r = await extractDocumentText('pdf', fixture('roadmap.pdf'));
    expect(r).toMatchObject({ ok: true, pages: 1, pagesRead: 1, truncated: false });
    if (!r.ok) return;
    expect(r.text).toContain('Roadmap 2026');
    expect(r.text).toContain('the mobile app ships offline sync in Q2.');
  });

  it('reads a Word document, an Excel workbook as CSV per sheet and PowerPoint slides in order', async () => {
    const docx = await extractDocumentText('docx', fixture('roadmap.docx'));
    expect(docx.ok && docx.text).toMatch(/Roadmap 2026\s+Decision: the mobile app ships offline sync in Q2\.\s+Owner: Priya/);
    const xlsx = await extractDocumentText('xlsx', fixture('budget.xlsx'));
    expect(xlsx.ok && xlsx.text).toBe('# Sheet: budget\nItem,Amount,Owner\nCloud hosting,12000,Ops\nTravel,3000,Sales');
    const pptx = await extractDocumentText('pptx', fixture('kickoff.pptx'));
    expect(pptx.ok && pptx.text).toBe('## Slide 1\nProject Falcon kick-off\nLaunch moves to March after the security review.\n\n## Slide 2\nNext steps: book the penetration test with the platform team.');
  });

  it('refuses a password-protected PDF and a password-protected Office file as encrypted', async () => {
    expect(await extractDocumentText('pdf', fixture('roadmap-encrypted.pdf'))).toMatchObject({ ok: false, reason: 'encrypted' });
    // Office writes a protected .docx/.xlsx/.pptx as an OLE compound file (magic D0 CF 11 E0 A1 B1 1A E1)
    const ole = new Uint8Array(4096);
    ole.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    for (const kind of ['docx', 'xlsx', 'pptx'] as const) expect(await extractDocumentText(kind, ole)).toMatchObject({ ok: false, reason: 'encrypted' });
  });

  it('refuses corrupt input as corrupt, without throwing', async () => {
    expect(await extractDocumentText('pdf', fixture('roadmap-truncated.pdf'))).toMatchObject({ ok: false, reason: 'corrupt' });
    expect(await extractDocumentText('pdf', new TextEncoder().encode('not a pdf at all'))).toMatchObject({ ok: false, reason: 'corrupt' });
    for (const kind of ['docx', 'xlsx', 'pptx'] as const) expect(await extractDocumentText(kind, new TextEncoder().encode('PK but not really a zip'))).toMatchObject({ ok: false, reason: 'corrupt' });
    // a zip that is not the kind it claims to be
    expect(await extractDocumentText('xlsx', fixture('kickoff.pptx'))).toMatchObject({ ok: false, reason: 'corrupt' });
    expect(await extractDocumentText('docx', fixture('budget.xlsx'))).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it('bounds the work: file size, unzipped size, entry count, pages, characters and time', async () => {
    expect(await extractDocumentText('pdf', fixture('roadmap.pdf'), { maxBytes: 1000 })).toMatchObject({ ok: false, reason: 'too_large' });
    // 8 MB of zeros compress to a few kB: the declared size is refused before anything is inflated
    const bomb = zipSync({ 'xl/workbook.xml': new Uint8Array(8 * 1024 * 1024) }, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(50_000);
    expect(await extractDocumentText('xlsx', bomb, { maxUnzippedBytes: 1024 * 1024 })).toMatchObject({ ok: false, reason: 'too_large' });
    const many = zipSync(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x/${i}.xml`, new Uint8Array(1)])));
    expect(await extractDocumentText('pptx', many, { maxZipEntries: 20 })).toMatchObject({ ok: false, reason: 'too_large' });
    const cut = await extractDocumentText('pptx', fixture('kickoff.pptx'), { maxChars: 30 });
    expect(cut).toMatchObject({ ok: true, truncated: true });
    expect(cut.ok && cut.text.length).toBeLessThanOrEqual(30);
    const zeroPages = await extractDocumentText('pdf', fixture('roadmap.pdf'), { maxPages: 0 });
    expect(zeroPages).toMatchObject({ ok: false, reason: 'empty' });
    expect(await extractDocumentText('pdf', fixture('roadmap.pdf'), { timeoutMs: 0 })).toMatchObject({ ok: false, reason: 'timeout' });
  });

  it('knows the four kinds by MIME type or extension, and nothing else', () => {
    expect(documentKind('application/pdf', 'x')).toBe('pdf');
    expect(documentKind('application/vnd.openxmlformats-officedocument.presentationml.presentation', null)).toBe('pptx');
    expect(documentKind(null, 'Budget.XLSX')).toBe('xlsx');
    expect(documentKind('application/octet-stream', 'notes.docx')).toBe('docx');
    expect(documentKind('application/msword', 'old.doc')).toBeNull();
    expect(documentKind('image/png', 'scan.png')).toBeNull();
  });
});
