import type { Connector, ConnectorContext, NormalizedObject, PageResult } from '../types.ts';
import { providerJson } from './provider-http.ts';

const NOTION_VERSION = '2022-06-28';
const MAX_DEPTH = 3;
const MAX_BLOCKS = 1000;

interface RichText { plain_text: string; href?: string | null; annotations?: { bold?: boolean; italic?: boolean; code?: boolean } }
interface NotionBlock { id: string; type: string; has_children?: boolean; [key: string]: unknown }
interface NotionObject {
  object: 'page' | 'database';
  id: string;
  url: string;
  last_edited_time: string;
  parent?: { type: string };
  archived?: boolean;
  in_trash?: boolean;
  properties?: Record<string, { type: string; title?: RichText[] } & Record<string, unknown>>;
  title?: RichText[];
  description?: RichText[];
}
interface NotionList<T> { object: 'list'; results: T[]; next_cursor: string | null; has_more: boolean }

const headers = { 'notion-version': NOTION_VERSION, 'content-type': 'application/json' };

/** Rich text as Markdown: links, bold, italic and inline code kept. */
function richText(parts: RichText[] | undefined): string {
  return (parts ?? []).map((p) => {
    let t = p.plain_text;
    if (p.annotations?.code) t = `\`${t}\``;
    if (p.annotations?.bold) t = `**${t}**`;
    if (p.annotations?.italic) t = `_${t}_`;
    return p.href ? `[${t}](${p.href})` : t;
  }).join('');
}

/** One block as a Markdown line; media and embeds have no text and are left out. */
export function blockToMarkdown(block: NotionBlock, indent: string): string | null {
  const body = block[block.type] as { rich_text?: RichText[]; checked?: boolean; language?: string; title?: string } | undefined;
  const text = richText(body?.rich_text);
  switch (block.type) {
    case 'paragraph': return text ? `${indent}${text}` : null;
    case 'heading_1': return `# ${text}`;
    case 'heading_2': return `## ${text}`;
    case 'heading_3': return `### ${text}`;
    case 'bulleted_list_item': case 'toggle': return `${indent}- ${text}`;
    case 'numbered_list_item': return `${indent}1. ${text}`;
    case 'to_do': return `${indent}- [${body?.checked ? 'x' : ' '}] ${text}`;
    case 'quote': case 'callout': return `${indent}> ${text}`;
    case 'code': return `\`\`\`${body?.language ?? ''}\n${text}\n\`\`\``;
    case 'divider': return '---';
    case 'child_page': case 'child_database': return `${indent}- ${body?.title ?? ''} (${block.type === 'child_page' ? 'page' : 'database'})`;
    default: return null;
  }
}

const titleOf = (o: NotionObject): string => {
  if (o.object === 'database') return richText(o.title) || 'Untitled database';
  const prop = Object.values(o.properties ?? {}).find((p) => p.type === 'title');
  return richText(prop?.title) || 'Untitled';
};

async function pageMarkdown(ctx: ConnectorContext, api: string, blockId: string, depth: number, budget: { left: number }): Promise<string[]> {
  const lines: string[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `${api}/v1/blocks/${blockId}/children?page_size=100${cursor ? `&start_cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { body }: { body: NotionList<NotionBlock> } = await providerJson<NotionList<NotionBlock>>(ctx, url, { headers });
    for (const block of body.results) {
      if (budget.left-- <= 0) return lines;
      const line = blockToMarkdown(block, '  '.repeat(depth));
      if (line !== null) lines.push(line);
      // Child pages are synced as pages of their own; other nested blocks belong to this one.
      if (block.has_children && depth < MAX_DEPTH && block.type !== 'child_page' && block.type !== 'child_database') {
        lines.push(...(await pageMarkdown(ctx, api, block.id, depth + 1, budget)));
      }
    }
    cursor = body.has_more ? body.next_cursor : null;
  } while (cursor);
  return lines;
}

/**
 * Notion: `POST /v1/search` lists every page and database shared with the integration, newest edit
 * first (start_cursor pagination); pages become Markdown from their blocks. An incremental pass stops at
 * the first object edited before the checkpoint.
 */
export const notionConnector: Connector = {
  provider: 'notion',
  async listPage(ctx, cursor): Promise<PageResult> {
    const api = ctx.baseUrl.replace(/\/$/, '');
    const request = { page_size: 50, sort: { direction: 'descending', timestamp: 'last_edited_time' }, ...(cursor ? { start_cursor: cursor } : {}) };
    const { body } = await providerJson<NotionList<NotionObject>>(ctx, `${api}/v1/search`, { method: 'POST', headers, body: JSON.stringify(request) });
    const items: NormalizedObject[] = [];
    const deletedIds: string[] = [];
    let reachedCheckpoint = false;
    for (const o of body.results) {
      if (ctx.checkpoint && o.last_edited_time < ctx.checkpoint) {
        reachedCheckpoint = true;
        break;
      }
      const id = `${o.object}:${o.id}`;
      if (o.archived || o.in_trash) {
        deletedIds.push(id);
        continue;
      }
      const title = titleOf(o);
      if (o.object === 'database') {
        const props = Object.keys(o.properties ?? {});
        items.push({ id, type: 'database', url: o.url, content: `[Notion database] ${title}\n\n${richText(o.description)}\n\nProperties: ${props.join(', ')}`.trim(), metadata: { notion_id: o.id, last_edited_time: o.last_edited_time } });
        continue;
      }
      const lines = await pageMarkdown(ctx, api, o.id, 0, { left: MAX_BLOCKS });
      items.push({ id, type: 'page', url: o.url, content: `# ${title}\n\n${lines.join('\n')}`.trim(), metadata: { notion_id: o.id, parent: o.parent?.type ?? null, last_edited_time: o.last_edited_time } });
    }
    const done = reachedCheckpoint || !body.has_more || !body.next_cursor;
    return { items, deletedIds, nextCursor: done ? null : body.next_cursor, ...(done ? { checkpoint: ctx.passStartedAt } : {}) };
  },
};
