import { documentKind, EXTRACTION_DEFAULTS, extractDocumentText, type DocumentKind, type ExtractionLimits } from '../../text/document-text.ts';
import type { ConnectorContext } from '../types.ts';
import { providerRequest } from './provider-http.ts';

const TYPES: Record<DocumentKind, string> = { pdf: 'pdf', docx: 'document', xlsx: 'spreadsheet', pptx: 'presentation' };

/** The limits of one connection: the defaults, narrowed (never widened) by `options.document_limits`. */
export function documentLimits(ctx: ConnectorContext): ExtractionLimits {
  const asked = (ctx.options.document_limits ?? {}) as Partial<Record<keyof ExtractionLimits, unknown>>;
  const out = { ...EXTRACTION_DEFAULTS };
  for (const key of Object.keys(out) as Array<keyof ExtractionLimits>) {
    const v = asked[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = Math.min(v, out[key]);
  }
  return out;
}

export type DocumentOutcome =
  | { extracted: true; type: string; text: string; metadata: Record<string, unknown> }
  | { extracted: false; reason: string; detail: string; metadata: Record<string, unknown> };

/**
 * Downloads one PDF/Word/Excel/PowerPoint file and extracts its text within the connection's limits.
 * A file over the size limit is not downloaded (declared size) or stops at the limit (actual size); an
 * encrypted, corrupt or empty file comes back as `extracted: false` with the reason, never as an error.
 * Provider errors of the download itself (401, 429, 5xx) propagate as for any other provider call.
 */
export async function downloadAndExtract(ctx: ConnectorContext, url: string, file: { mimeType: string | null; name: string; size: number | null }): Promise<DocumentOutcome | null> {
  const kind = documentKind(file.mimeType, file.name);
  if (!kind) return null;
  const limits = documentLimits(ctx);
  const base = { document_kind: kind };
  if (file.size !== null && file.size > limits.maxBytes) {
    return { extracted: false, reason: 'too_large', detail: `${file.size} bytes; the limit is ${limits.maxBytes}`, metadata: base };
  }
  const res = await providerRequest(ctx, url, { binary: true, maxBytes: limits.maxBytes, timeoutMs: Math.max(15_000, limits.timeoutMs), headers: { accept: '*/*' } });
  if (res.truncated) return { extracted: false, reason: 'too_large', detail: `the download passed ${limits.maxBytes} bytes`, metadata: base };
  const result = await extractDocumentText(kind, new Uint8Array(res.bytes ?? Buffer.alloc(0)), limits);
  if (!result.ok) return { extracted: false, reason: result.reason, detail: result.detail, metadata: base };
  return {
    extracted: true, type: TYPES[kind], text: result.text,
    metadata: { ...base, truncated: result.truncated, ...(result.pages !== undefined ? { pages: result.pages, pages_read: result.pagesRead } : {}) },
  };
}
