/**
 * Text of binary documents a connector downloads: PDF (unpdf — Mozilla pdf.js in a serverless build),
 * Word .docx (mammoth), Excel .xlsx and PowerPoint .pptx (their OOXML parts read with fflate and
 * fast-xml-parser). Every library is imported on first use, so only a process that really extracts (the
 * integration-sync worker) loads it; the Lambda bundles keep them external (infra/bundling.ts).
 *
 * The work is bounded: the input size, the declared unzipped size and entry count of an OOXML package
 * (checked before anything is inflated), the pages read from a PDF, the characters kept and the wall time.
 * An encrypted, corrupt or oversized file is not an error: the answer says why it was skipped, and the
 * connector records that on the object instead of failing the sync.
 */

export type DocumentKind = 'pdf' | 'docx' | 'xlsx' | 'pptx';

export interface ExtractionLimits {
  /** largest file read at all (and downloaded) */
  maxBytes: number;
  /** PDF pages read; the rest is left out and the result marked truncated */
  maxPages: number;
  /** characters kept; the rest is cut and the result marked truncated */
  maxChars: number;
  /** wall time for one document; checked between pages, sheets and slides, and raced for the whole call */
  timeoutMs: number;
  /** sum of the declared uncompressed sizes of an OOXML package (zip-bomb guard) */
  maxUnzippedBytes: number;
  /** entries in an OOXML package */
  maxZipEntries: number;
}

export const EXTRACTION_DEFAULTS: ExtractionLimits = {
  maxBytes: 10 * 1024 * 1024,
  maxPages: 50,
  maxChars: 200_000,
  timeoutMs: 20_000,
  maxUnzippedBytes: 50 * 1024 * 1024,
  maxZipEntries: 2_000,
};

export type SkipReason = 'too_large' | 'encrypted' | 'corrupt' | 'timeout' | 'empty';

export type ExtractionResult =
  | { ok: true; text: string; truncated: boolean; pages?: number; pagesRead?: number }
  | { ok: false; reason: SkipReason; detail: string };

const MIME_KINDS: Record<string, DocumentKind> = {
  'application/pdf': 'pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'pptx',
};

/** The kind of a file by MIME type, else by extension; null when it is none of the four. */
export function documentKind(mimeType: string | null | undefined, name: string | null | undefined): DocumentKind | null {
  const byMime = mimeType ? MIME_KINDS[mimeType.split(';')[0]!.trim().toLowerCase()] : undefined;
  if (byMime) return byMime;
  const ext = /\.(pdf|docx|xlsx|pptx)$/i.exec(name ?? '')?.[1]?.toLowerCase();
  return (ext as DocumentKind | undefined) ?? null;
}

class Skip extends Error {
  constructor(readonly reason: SkipReason, detail: string) {
    super(detail);
  }
}

/** Extracts the text of one document within the limits; never throws for a bad file. */
export async function extractDocumentText(kind: DocumentKind, bytes: Uint8Array, limits: Partial<ExtractionLimits> = {}): Promise<ExtractionResult> {
  const l: ExtractionLimits = { ...EXTRACTION_DEFAULTS, ...limits };
  if (bytes.byteLength > l.maxBytes) return { ok: false, reason: 'too_large', detail: `${bytes.byteLength} bytes; the limit is ${l.maxBytes}` };
  const deadline = Date.now() + l.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Skip('timeout', `no result within ${l.timeoutMs} ms`)), l.timeoutMs);
  });
  try {
    const run = kind === 'pdf' ? pdfText(bytes, l, deadline) : ooxmlText(kind, bytes, l, deadline);
    const out = await Promise.race([run, timeout]);
    const text = out.text.replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
    if (!text) return { ok: false, reason: 'empty', detail: 'no text found (a scanned image has none without OCR)' };
    const cut = text.length > l.maxChars;
    return { ...out, ok: true, text: cut ? text.slice(0, l.maxChars) : text, truncated: out.truncated || cut };
  } catch (error) {
    if (error instanceof Skip) return { ok: false, reason: error.reason, detail: error.message };
    return { ok: false, reason: 'corrupt', detail: `${(error as Error)?.name ?? 'Error'}: ${String((error as Error)?.message ?? error).slice(0, 200)}` };
  } finally {
    clearTimeout(timer);
  }
}

const checkDeadline = (deadline: number, what: string) => {
  if (Date.now() > deadline) throw new Skip('timeout', `time ran out while reading ${what}`);
};

// ------------------------------------------------------------------ PDF

async function pdfText(bytes: Uint8Array, l: ExtractionLimits, deadline: number): Promise<{ text: string; truncated: boolean; pages: number; pagesRead: number }> {
  const { getDocumentProxy } = await import('unpdf');
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js may detach the buffer it is given: hand it a copy
    pdf = await getDocumentProxy(new Uint8Array(bytes), { isEvalSupported: false, stopAtErrors: false });
  } catch (error) {
    const name = (error as Error)?.name ?? '';
    if (name === 'PasswordException') throw new Skip('encrypted', 'the PDF needs a password');
    throw new Skip('corrupt', `${name || 'Error'}: ${String((error as Error)?.message ?? error).slice(0, 200)}`);
  }
  try {
    const pages = pdf.numPages;
    const read = Math.min(pages, l.maxPages);
    const parts: string[] = [];
    let chars = 0;
    let pagesRead = 0;
    for (let n = 1; n <= read && chars <= l.maxChars; n++) {
      checkDeadline(deadline, `page ${n}`);
      const page = await pdf.getPage(n);
      const content = await page.getTextContent();
      const text = content.items.map((item) => ('str' in item ? item.str + (item.hasEOL ? '\n' : '') : '')).join('');
      page.cleanup();
      parts.push(text);
      chars += text.length;
      pagesRead = n;
    }
    return { text: parts.join('\n\n'), truncated: pagesRead < pages, pages, pagesRead };
  } finally {
    await pdf.destroy().catch(() => {});
  }
}

// ------------------------------------------------------------------ OOXML (docx, xlsx, pptx)

/** An OLE compound file: what Office writes for a password-protected .docx/.xlsx/.pptx. */
const isCompoundFile = (b: Uint8Array) => b.length >= 8 && b[0] === 0xd0 && b[1] === 0xcf && b[2] === 0x11 && b[3] === 0xe0 && b[4] === 0xa1 && b[5] === 0xb1 && b[6] === 0x1a && b[7] === 0xe1;

/**
 * Opens the package: refuses encrypted and non-zip input, checks the declared sizes and entry count of
 * every entry before inflating, and inflates only the parts `wanted` selects.
 */
async function openPackage(bytes: Uint8Array, l: ExtractionLimits, wanted: (name: string) => boolean): Promise<Map<string, string>> {
  if (isCompoundFile(bytes)) throw new Skip('encrypted', 'the Office file is password-protected');
  const { unzipSync, strFromU8 } = await import('fflate');
  let entries = 0;
  let declared = 0;
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        entries += 1;
        declared += f.originalSize;
        if (entries > l.maxZipEntries) throw new Skip('too_large', `more than ${l.maxZipEntries} entries in the package`);
        if (declared > l.maxUnzippedBytes) throw new Skip('too_large', `the package unzips to more than ${l.maxUnzippedBytes} bytes`);
        return wanted(f.name);
      },
    });
  } catch (error) {
    if (error instanceof Skip) throw error;
    throw new Skip('corrupt', `not a readable Office package: ${String((error as Error)?.message ?? error).slice(0, 200)}`);
  }
  return new Map(Object.entries(files).map(([name, data]) => [name, strFromU8(data)]));
}

async function ooxmlText(kind: Exclude<DocumentKind, 'pdf'>, bytes: Uint8Array, l: ExtractionLimits, deadline: number): Promise<{ text: string; truncated: boolean }> {
  if (kind === 'docx') {
    // only the size and encryption checks here; mammoth reads the package itself
    await openPackage(bytes, l, () => false);
    const mammoth = (await import('mammoth')).default;
    const result = await mammoth.extractRawText({ buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) }).catch((error: unknown) => {
      throw new Skip('corrupt', `not a readable Word document: ${String((error as Error)?.message ?? error).slice(0, 200)}`);
    });
    return { text: result.value, truncated: false };
  }
  const parts = await openPackage(bytes, l, (name) => name.endsWith('.xml') || name.endsWith('.rels'));
  const { XMLParser } = await import('fast-xml-parser');
  const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', trimValues: false, parseTagValue: false, processEntities: true });
  const parse = (name: string): XmlNode[] => {
    const xml = parts.get(name);
    if (xml === undefined) throw new Skip('corrupt', `the package has no ${name}`);
    return parser.parse(xml) as XmlNode[];
  };
  return kind === 'xlsx' ? xlsxText(parse, parts, l, deadline) : pptxText(parse, l, deadline);
}

/** fast-xml-parser's preserveOrder shape: `{ tag: children[], ':@': attributes }` or `{ '#text': value }`. */
type XmlNode = Record<string, unknown>;

const tagOf = (n: XmlNode) => Object.keys(n).find((k) => k !== ':@');
const childrenOf = (n: XmlNode): XmlNode[] => {
  const tag = tagOf(n);
  const v = tag ? n[tag] : undefined;
  return Array.isArray(v) ? (v as XmlNode[]) : [];
};
const attr = (n: XmlNode, name: string): string | undefined => (n[':@'] as Record<string, string> | undefined)?.[name];
const local = (tag: string | undefined) => (tag ?? '').replace(/^.*:/, '');

/** Every element named `name` (local name) under the nodes, document order. */
function findAll(nodes: XmlNode[], name: string, out: XmlNode[] = []): XmlNode[] {
  for (const n of nodes) {
    const tag = tagOf(n);
    if (!tag || tag === '#text') continue;
    if (local(tag) === name) out.push(n);
    else findAll(childrenOf(n), name, out);
  }
  return out;
}

/** Text of the `t` elements under the nodes, `br` as a line break. */
function textOf(nodes: XmlNode[]): string {
  let s = '';
  for (const n of nodes) {
    const tag = tagOf(n);
    if (tag === '#text') continue;
    if (local(tag) === 't') s += childrenOf(n).map((c) => String(c['#text'] ?? '')).join('');
    else if (local(tag) === 'br') s += '\n';
    else if (local(tag) !== 'rPh') s += textOf(childrenOf(n)); // rPh: phonetic guide, not content
  }
  return s;
}

/** Relationship id → part path, from a `_rels/*.rels` part (targets are relative to `base`). */
function relationships(nodes: XmlNode[], base: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const r of findAll(nodes, 'Relationship')) {
    const id = attr(r, 'Id');
    const target = attr(r, 'Target');
    if (!id || !target) continue;
    map.set(id, target.startsWith('/') ? target.slice(1) : new URL(target, `http://x/${base}`).pathname.slice(1));
  }
  return map;
}

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

const columnIndex = (ref: string | undefined, fallback: number) => {
  const letters = /^([A-Z]+)/.exec(ref ?? '')?.[1];
  if (!letters) return fallback;
  let n = 0;
  for (const ch of letters) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n - 1;
};

/** Each sheet as `# Sheet: name` and its rows as CSV lines (shared and inline strings resolved). */
function xlsxText(parse: (name: string) => XmlNode[], parts: Map<string, string>, l: ExtractionLimits, deadline: number) {
  const shared = parts.has('xl/sharedStrings.xml') ? findAll(parse('xl/sharedStrings.xml'), 'si').map((si) => textOf(childrenOf(si))) : [];
  const rels = relationships(parse('xl/_rels/workbook.xml.rels'), 'xl/');
  const out: string[] = [];
  let chars = 0;
  let truncated = false;
  for (const sheet of findAll(parse('xl/workbook.xml'), 'sheet')) {
    checkDeadline(deadline, `sheet ${attr(sheet, 'name')}`);
    const path = rels.get(attr(sheet, 'r:id') ?? '');
    if (!path || !parts.has(path)) continue;
    out.push(`# Sheet: ${attr(sheet, 'name') ?? path}`);
    for (const row of findAll(parse(path), 'row')) {
      const cells: string[] = [];
      for (const c of findAll(childrenOf(row), 'c')) {
        const type = attr(c, 't');
        const v = findAll(childrenOf(c), 'v')[0];
        const raw = v ? textOf([{ t: childrenOf(v) }]) : '';
        const value = type === 's' ? (shared[Number(raw)] ?? '') : type === 'inlineStr' ? textOf(findAll(childrenOf(c), 'is')) : type === 'b' ? (raw === '1' ? 'TRUE' : 'FALSE') : raw;
        const at = columnIndex(attr(c, 'r'), cells.length);
        while (cells.length < at) cells.push('');
        cells[at] = csvCell(value);
      }
      const line = cells.join(',').replace(/,+$/, '');
      if (!line) continue;
      out.push(line);
      chars += line.length + 1;
      if (chars > l.maxChars) {
        truncated = true;
        return { text: out.join('\n'), truncated };
      }
    }
    out.push('');
  }
  return { text: out.join('\n'), truncated };
}

/** Slides in presentation order as `## Slide n` and their paragraphs. */
function pptxText(parse: (name: string) => XmlNode[], l: ExtractionLimits, deadline: number) {
  const rels = relationships(parse('ppt/_rels/presentation.xml.rels'), 'ppt/');
  const out: string[] = [];
  let chars = 0;
  let n = 0;
  for (const ref of findAll(parse('ppt/presentation.xml'), 'sldId')) {
    const path = rels.get(attr(ref, 'r:id') ?? '');
    if (!path) continue;
    n += 1;
    checkDeadline(deadline, `slide ${n}`);
    const paragraphs = findAll(parse(path), 'p').map((p) => textOf(childrenOf(p)).trim()).filter(Boolean);
    out.push(`## Slide ${n}`, ...paragraphs, '');
    chars += paragraphs.reduce((s, p) => s + p.length + 1, 0);
    if (chars > l.maxChars) return { text: out.join('\n'), truncated: true };
  }
  return { text: out.join('\n'), truncated: false };
}
