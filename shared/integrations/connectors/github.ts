import { ProviderError, type Connector, type ConnectorContext, type NormalizedObject, type PageResult } from '../types.ts';
import { nextLink, providerJson, rateLimitHeaders } from './provider-http.ts';

interface GithubState {
  /** `owner/name` of every repository of the pass; null until listed */
  repos: string[] | null;
  reposNext: string | null;
  repoIndex: number;
  stream: number;
  next: string | null;
}

const STREAMS = ['issues', 'commits', 'discussions'] as const;
const HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

interface GhIssue { number: number; title: string; body: string | null; state: string; html_url: string; updated_at: string; user?: { login: string } | null; labels?: Array<{ name: string } | string>; pull_request?: unknown }
interface GhCommit { sha: string; html_url: string; commit: { message: string; author?: { name?: string; date?: string } | null } }
interface GhDiscussion { number: number; title: string; body: string | null; html_url: string; updated_at: string; user?: { login: string } | null; category?: { name: string } | null }
interface GhRepo { full_name: string; description: string | null; html_url: string; updated_at: string }

/**
 * GitHub REST v3: the token's repositories (or `options.repos`), then per repository its issues (the
 * issues endpoint also returns pull requests, marked `pull_request`), commits and discussions, each
 * paged by the Link header. Incremental passes use `since` (issues, commits) or `updated_at` (discussions).
 */
export const githubConnector: Connector = {
  provider: 'github',
  async listPage(ctx, cursor): Promise<PageResult> {
    const configured = Array.isArray(ctx.options.repos) ? (ctx.options.repos as unknown[]).filter((r): r is string => typeof r === 'string') : null;
    const state: GithubState = cursor ? (JSON.parse(cursor) as GithubState) : { repos: configured, reposNext: null, repoIndex: 0, stream: 0, next: null };
    const api = ctx.baseUrl.replace(/\/$/, '');

    if (state.repos === null || state.reposNext) {
      const url = state.reposNext ?? `${api}/user/repos?per_page=100&sort=full_name`;
      const { body, res } = await providerJson<GhRepo[]>(ctx, url, { headers: HEADERS });
      state.repos = [...(state.repos ?? []), ...body.map((r) => r.full_name)];
      state.reposNext = nextLink(res.headers);
      const items = body.filter((r) => !ctx.checkpoint || r.updated_at >= ctx.checkpoint).map((r): NormalizedObject => ({
        id: `repo:${r.full_name}`, type: 'repository', url: r.html_url,
        content: `[GitHub repository] ${r.full_name}${r.description ? `: ${r.description}` : ''}`,
        metadata: { repo: r.full_name, updated_at: r.updated_at },
      }));
      return { items, nextCursor: JSON.stringify(state), rateLimit: rateLimitHeaders(res.headers) };
    }
    if (state.repoIndex >= state.repos.length) return { items: [], nextCursor: null, checkpoint: ctx.passStartedAt };

    const repo = state.repos[state.repoIndex]!;
    const stream = STREAMS[state.stream]!;
    const since = ctx.checkpoint ? `&since=${encodeURIComponent(ctx.checkpoint)}` : '';
    const first = {
      issues: `${api}/repos/${repo}/issues?state=all&per_page=100&sort=updated&direction=asc${since}`,
      commits: `${api}/repos/${repo}/commits?per_page=100${since}`,
      discussions: `${api}/repos/${repo}/discussions?per_page=100`,
    }[stream];
    let items: NormalizedObject[] = [];
    let next: string | null = null;
    let rateLimit: PageResult['rateLimit'];
    try {
      const { body, res } = await providerJson<unknown[]>(ctx, state.next ?? first, { headers: HEADERS });
      items = mapStream(stream, repo, body, ctx);
      next = nextLink(res.headers);
      rateLimit = rateLimitHeaders(res.headers);
    } catch (error) {
      // Discussions are off in most repositories (404), and the endpoint is REST-only by undocumented
      // convention; an empty repository answers 409 to /commits. Neither stops the pass.
      const skippable = error instanceof ProviderError && ((stream === 'discussions' && error.status === 404) || (stream === 'commits' && error.status === 409));
      if (!skippable) throw error;
    }
    state.next = next;
    if (!next) {
      state.stream++;
      if (state.stream >= STREAMS.length) {
        state.stream = 0;
        state.repoIndex++;
      }
    }
    return { items, nextCursor: JSON.stringify(state), rateLimit };
  },
};

function mapStream(stream: (typeof STREAMS)[number], repo: string, body: unknown[], ctx: ConnectorContext): NormalizedObject[] {
  if (stream === 'issues') {
    return (body as GhIssue[]).map((i) => {
      const type = i.pull_request ? 'pull_request' : 'issue';
      const labels = (i.labels ?? []).map((l) => (typeof l === 'string' ? l : l.name));
      return {
        id: `${type}:${repo}#${i.number}`, type, url: i.html_url,
        content: `[GitHub ${type === 'issue' ? 'issue' : 'pull request'}] ${repo}#${i.number}: ${i.title} (${i.state})\n\n${i.body ?? ''}`.trim(),
        metadata: { repo, number: i.number, state: i.state, author: i.user?.login ?? null, labels, updated_at: i.updated_at },
      };
    });
  }
  if (stream === 'commits') {
    return (body as GhCommit[]).map((c) => ({
      id: `commit:${repo}@${c.sha}`, type: 'commit', url: c.html_url,
      content: `[GitHub commit] ${repo}@${c.sha.slice(0, 7)} by ${c.commit.author?.name ?? 'unknown'}: ${c.commit.message}`,
      metadata: { repo, sha: c.sha, author: c.commit.author?.name ?? null, date: c.commit.author?.date ?? null },
    }));
  }
  return (body as GhDiscussion[])
    .filter((d) => !ctx.checkpoint || d.updated_at >= ctx.checkpoint)
    .map((d) => ({
      id: `discussion:${repo}#${d.number}`, type: 'discussion', url: d.html_url,
      content: `[GitHub discussion] ${repo}#${d.number}: ${d.title}\n\n${d.body ?? ''}`.trim(),
      metadata: { repo, number: d.number, author: d.user?.login ?? null, category: d.category?.name ?? null, updated_at: d.updated_at },
    }));
}
