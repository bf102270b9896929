import { parse } from 'node-html-parser';
import robotsParser from 'robots-parser';
import { SsrfBlockedError } from '../net/ssrf-guard.ts';
import type { GuardedHttp, GuardedResponse } from './guarded-http.ts';

export interface CrawlSettings {
  userAgent: string;
  /** larger pages are skipped, not truncated: half a page would store half an article */
  maxPageBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

export const CRAWL_DEFAULTS: CrawlSettings = { userAgent: 'MemorySyncCrawler/1.0', maxPageBytes: 2 * 1024 * 1024, timeoutMs: 10_000, maxRedirects: 5 };

export interface CrawledPage {
  url: string;
  title: string | null;
  text: string;
}

export interface CrawlCallbacks {
  page(page: CrawledPage): Promise<void>;
  skip(url: string, reason: string): Promise<void>;
}

/** The start URL (or its robots.txt) is unreachable or refused; nothing was crawled. */
export class CrawlRefusedError extends Error {
  override readonly name = 'CrawlRefusedError';
}

const REMOVED_ELEMENTS = 'script,style,noscript,template,svg,iframe,head';

/** Visible text and same-origin links of an HTML page. */
export function htmlToText(html: string, base: URL): { title: string | null; text: string; links: URL[] } {
  const root = parse(html, { comment: false });
  const title = root.querySelector('title')?.text.trim() || null;
  const links: URL[] = [];
  for (const a of root.querySelectorAll('a[href]')) {
    try {
      const url = new URL(a.getAttribute('href')!, base);
      url.hash = '';
      if (url.origin === base.origin && (url.protocol === 'http:' || url.protocol === 'https:')) links.push(url);
    } catch {
      // an unparseable href is not a link
    }
  }
  for (const node of root.querySelectorAll(REMOVED_ELEMENTS)) node.remove();
  const text = root.structuredText.replace(/[ \t]+/g, ' ').replace(/\n{3,}/g, '\n\n').trim();
  return { title, text, links };
}

/**
 * Breadth-first crawl of the start URL's origin: robots.txt honoured (unreachable robots.txt = nothing
 * allowed, as RFC 9309 says for 5xx), every URL and every redirect target through the SSRF guard
 * (inside `http`), redirects only within the origin, HTML and plain text only, at most `maxPages` stored.
 */
export async function crawlSite(http: GuardedHttp, start: string, maxPages: number, callbacks: CrawlCallbacks, settings: CrawlSettings = CRAWL_DEFAULTS): Promise<{ stored: number }> {
  const origin = new URL(start);
  origin.hash = '';
  const robots = await loadRobots(http, origin, settings);
  const queue: URL[] = [origin];
  const seen = new Set([origin.href]);
  let stored = 0;
  while (queue.length && stored < maxPages) {
    const url = queue.shift()!;
    if (robots.isDisallowed(url.href, settings.userAgent)) {
      await callbacks.skip(url.href, 'disallowed by robots.txt');
      continue;
    }
    let res: GuardedResponse;
    try {
      res = await fetchWithinOrigin(http, url, origin, settings);
    } catch (error) {
      if (url === origin) throw new CrawlRefusedError(reason(error));
      await callbacks.skip(url.href, reason(error));
      continue;
    }
    const type = String(res.headers['content-type'] ?? '').toLowerCase();
    if (res.status !== 200) {
      await callbacks.skip(url.href, `HTTP ${res.status}`);
      continue;
    }
    if (res.truncated) {
      await callbacks.skip(url.href, `larger than ${settings.maxPageBytes} bytes`);
      continue;
    }
    if (type.includes('text/plain')) {
      await callbacks.page({ url: res.url.href, title: null, text: res.body.trim() });
      stored++;
      continue;
    }
    if (!type.includes('text/html') && !type.includes('application/xhtml')) {
      await callbacks.skip(url.href, `not HTML (${type || 'no content type'})`);
      continue;
    }
    const page = htmlToText(res.body, res.url);
    for (const link of page.links) {
      if (!seen.has(link.href)) {
        seen.add(link.href);
        queue.push(link);
      }
    }
    if (page.text) {
      await callbacks.page({ url: res.url.href, title: page.title, text: page.text });
      stored++;
    } else {
      await callbacks.skip(url.href, 'no text');
    }
  }
  return { stored };
}

function reason(error: unknown): string {
  if (error instanceof SsrfBlockedError) return `blocked by the SSRF guard: ${error.reason}`;
  return error instanceof Error ? error.message : String(error);
}

async function fetchWithinOrigin(http: GuardedHttp, url: URL, origin: URL, settings: CrawlSettings): Promise<GuardedResponse> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await http.request(current, { headers: { 'user-agent': settings.userAgent, accept: 'text/html,text/plain;q=0.9' }, maxBytes: settings.maxPageBytes, timeoutMs: settings.timeoutMs });
    if (res.status < 300 || res.status >= 400 || !res.headers.location) return res;
    if (hop >= settings.maxRedirects) throw new Error('too many redirects');
    const next = new URL(res.headers.location, current);
    if (next.origin !== origin.origin) throw new Error(`redirect to another origin (${next.origin}) not followed`);
    current = next;
  }
}

async function loadRobots(http: GuardedHttp, origin: URL, settings: CrawlSettings) {
  const robotsUrl = new URL('/robots.txt', origin).href;
  let res: GuardedResponse;
  try {
    res = await fetchWithinOrigin(http, new URL(robotsUrl), origin, { ...settings, maxPageBytes: 512 * 1024 });
  } catch (error) {
    throw new CrawlRefusedError(reason(error));
  }
  if (res.status >= 500) throw new CrawlRefusedError(`robots.txt unavailable (HTTP ${res.status}); crawling is not allowed until it answers`);
  // 4xx: no robots.txt, everything allowed.
  return robotsParser(robotsUrl, res.status === 200 ? res.body : '');
}
