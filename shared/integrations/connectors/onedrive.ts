import { ProviderError, type Connector, type NormalizedObject, type PageResult } from '../types.ts';
import { downloadAndExtract } from './documents.ts';
import { providerJson, providerRequest } from './provider-http.ts';

interface DriveItem {
  id: string;
  name?: string;
  webUrl?: string;
  size?: number;
  lastModifiedDateTime?: string;
  file?: { mimeType?: string };
  folder?: unknown;
  deleted?: { state?: string };
  parentReference?: { path?: string };
}
interface DeltaPage { value: DriveItem[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string }

const TEXT_EXTENSIONS = /\.(txt|md|markdown|csv|json|log|ya?ml)$/i;
const MAX_DOWNLOAD_BYTES = 1024 * 1024;

/**
 * OneDrive through Microsoft Graph: `/me/drive/root/delta`, following `@odata.nextLink`; the final
 * `@odata.deltaLink` is the checkpoint, so an incremental pass gets only changes (deletions included).
 * Plain-text files are downloaded (`/content`, a redirect to a pre-authenticated URL); Word, Excel,
 * PowerPoint (.docx/.xlsx/.pptx) and PDF files are downloaded the same way and their text extracted
 * within bounds (shared/text/document-text.ts) — Graph converts them to PDF or HTML, not to text. A file
 * that cannot be read (encrypted, corrupt, too large) and any other binary is indexed by name, with the
 * reason in its metadata.
 */
export const onedriveConnector: Connector = {
  provider: 'onedrive',
  async listPage(ctx, cursor): Promise<PageResult> {
    const api = ctx.baseUrl.replace(/\/$/, '');
    const url = cursor ?? ctx.checkpoint ?? `${api}/me/drive/root/delta`;
    // Links come from the provider's answers; the token only ever goes back to the configured origin.
    if (new URL(url).origin !== new URL(api).origin) throw new ProviderError(null, 'Graph returned a paging link to another origin');
    let body: DeltaPage;
    try {
      body = (await providerJson<DeltaPage>(ctx, url)).body;
    } catch (error) {
      // 410 resyncRequired: the delta token expired; Graph's remedy is a full enumeration from the root.
      if (!(error instanceof ProviderError && error.status === 410) || url === `${api}/me/drive/root/delta`) throw error;
      body = (await providerJson<DeltaPage>(ctx, `${api}/me/drive/root/delta`)).body;
    }
    const items: NormalizedObject[] = [];
    const deletedIds: string[] = [];
    for (const item of body.value) {
      const id = `item:${item.id}`;
      if (item.deleted) {
        deletedIds.push(id);
        continue;
      }
      if (!item.file || !item.name) continue;
      const path = `${(item.parentReference?.path ?? '').replace(/^\/drive\/root:?/, '')}/${item.name}`;
      const metadata = { onedrive_id: item.id, name: item.name, path, mime_type: item.file.mimeType ?? null, modified: item.lastModifiedDateTime ?? null };
      if (TEXT_EXTENSIONS.test(item.name) && (item.size ?? 0) <= MAX_DOWNLOAD_BYTES) {
        const res = await providerRequest(ctx, `${api}/me/drive/items/${item.id}/content`, { maxBytes: MAX_DOWNLOAD_BYTES });
        items.push({ id, type: 'file', url: item.webUrl ?? null, content: `[OneDrive file] ${path}\n\n${res.body.trim()}`, metadata });
      } else {
        const doc = await downloadAndExtract(ctx, `${api}/me/drive/items/${item.id}/content`, { mimeType: item.file.mimeType ?? null, name: item.name, size: item.size ?? null });
        if (doc?.extracted) {
          items.push({ id, type: doc.type, url: item.webUrl ?? null, content: `[OneDrive ${doc.type}] ${path}\n\n${doc.text}`, metadata: { ...metadata, ...doc.metadata, extracted: true } });
        } else {
          const why = doc ? `content not extracted: ${doc.reason}` : 'content not extracted';
          const skip = doc ? { ...doc.metadata, skip_reason: doc.reason, skip_detail: doc.detail } : { skip_reason: 'unsupported_type' };
          items.push({ id, type: 'file_reference', url: item.webUrl ?? null, content: `[OneDrive file] ${path} (${item.file.mimeType ?? 'unknown type'}; ${why})`, metadata: { ...metadata, extracted: false, ...skip } });
        }
      }
    }
    const next = body['@odata.nextLink'] ?? null;
    return { items, deletedIds, nextCursor: next, ...(next ? {} : { checkpoint: body['@odata.deltaLink'] ?? null }) };
  },
};
