import type { Connector, NormalizedObject, PageResult } from '../types.ts';
import { downloadAndExtract } from './documents.ts';
import { providerJson, providerRequest } from './provider-http.ts';

interface DriveFile { id: string; name: string; mimeType: string; modifiedTime: string; webViewLink?: string; size?: string; trashed?: boolean }
interface DriveList { nextPageToken?: string; files: DriveFile[] }

/** Google-native formats and what they export to (Drive export limit: 10 MB). */
const EXPORTS: Record<string, { mime: string; type: string }> = {
  'application/vnd.google-apps.document': { mime: 'text/plain', type: 'document' },
  'application/vnd.google-apps.spreadsheet': { mime: 'text/csv', type: 'spreadsheet' },
  'application/vnd.google-apps.presentation': { mime: 'text/plain', type: 'presentation' },
};
const MAX_DOWNLOAD_BYTES = 1024 * 1024;
const isPlainText = (mime: string) => mime.startsWith('text/') || mime === 'application/json';

/**
 * Google Drive v3: `files.list` (pageToken pagination, `modifiedTime >` the checkpoint on incremental
 * passes); Docs and Slides exported as text/plain, Sheets as text/csv, plain-text files downloaded.
 * PDFs (and uploaded .docx/.xlsx/.pptx) are downloaded (`alt=media`) and their text extracted within
 * bounds (shared/text/document-text.ts); a file that cannot be read (encrypted, corrupt, too large) and
 * any other binary is indexed by name, with the reason in its metadata.
 */
export const googleDriveConnector: Connector = {
  provider: 'google_drive',
  async listPage(ctx, cursor): Promise<PageResult> {
    const api = ctx.baseUrl.replace(/\/$/, '');
    const q = ["trashed = false", "mimeType != 'application/vnd.google-apps.folder'", ...(ctx.checkpoint ? [`modifiedTime > '${ctx.checkpoint}'`] : [])].join(' and ');
    const params = new URLSearchParams({ pageSize: '100', q, fields: 'nextPageToken,files(id,name,mimeType,modifiedTime,webViewLink,size)' });
    if (cursor) params.set('pageToken', cursor);
    const { body } = await providerJson<DriveList>(ctx, `${api}/drive/v3/files?${params}`);
    const items: NormalizedObject[] = [];
    for (const f of body.files) {
      const base = { id: `file:${f.id}`, url: f.webViewLink ?? null };
      const metadata = { drive_id: f.id, name: f.name, mime_type: f.mimeType, modified_time: f.modifiedTime };
      const exported = EXPORTS[f.mimeType];
      let text: string | null = null;
      let type = 'file';
      if (exported) {
        text = (await providerRequest(ctx, `${api}/drive/v3/files/${f.id}/export?mimeType=${encodeURIComponent(exported.mime)}`, { maxBytes: 10 * 1024 * 1024 })).body;
        type = exported.type;
      } else if (isPlainText(f.mimeType) && Number(f.size ?? 0) <= MAX_DOWNLOAD_BYTES) {
        text = (await providerRequest(ctx, `${api}/drive/v3/files/${f.id}?alt=media`, { maxBytes: MAX_DOWNLOAD_BYTES })).body;
        type = 'text';
      } else {
        const doc = await downloadAndExtract(ctx, `${api}/drive/v3/files/${f.id}?alt=media`, { mimeType: f.mimeType, name: f.name, size: f.size === undefined ? null : Number(f.size) });
        if (doc?.extracted) {
          items.push({ ...base, type: doc.type, content: `[Google Drive ${doc.type}] ${f.name}\n\n${doc.text}`, metadata: { ...metadata, ...doc.metadata, extracted: true } });
          continue;
        }
        if (doc) {
          items.push({ ...base, type: 'file_reference', content: `[Google Drive file] ${f.name} (${f.mimeType}; content not extracted: ${doc.reason})`, metadata: { ...metadata, ...doc.metadata, extracted: false, skip_reason: doc.reason, skip_detail: doc.detail } });
          continue;
        }
      }
      items.push(text !== null
        ? { ...base, type, content: `[Google Drive ${type}] ${f.name}\n\n${text.trim()}`, metadata }
        : { ...base, type: 'file_reference', content: `[Google Drive file] ${f.name} (${f.mimeType}; content not extracted)`, metadata: { ...metadata, extracted: false, skip_reason: 'unsupported_type' } });
    }
    const next = body.nextPageToken ?? null;
    return { items, nextCursor: next, ...(next ? {} : { checkpoint: ctx.passStartedAt }) };
  },
};
