import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, createGuardedHttp, ProviderAuthError, ProviderError, ProviderRateLimitError, type ConnectorContext, type NormalizedObject } from '#shared/integrations/index.ts';
import { fixture, startProviderServer, type ProviderServer } from '../support/provider-server.ts';
import { GITHUB_TOKEN, ghRateHeaders, githubApi } from '../support/github-api.ts';

const http = createGuardedHttp({ allowPrivate: true });
const github = connectors.github;

function ctxFor(server: ProviderServer, overrides: Partial<ConnectorContext> = {}): ConnectorContext {
  return { http, token: GITHUB_TOKEN, baseUrl: server.url, options: {}, checkpoint: null, passStartedAt: '2026-01-01T00:00:00.000Z', ...overrides };
}

/** Pages a connector to the end of its pass. */
async function wholePass(ctx: ConnectorContext) {
  const items: NormalizedObject[] = [];
  let cursor: string | null = null;
  let checkpoint: string | null | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await github.listPage(ctx, cursor);
    items.push(...page.items);
    cursor = page.nextCursor;
    if (cursor === null) {
      checkpoint = page.checkpoint;
      break;
    }
  }
  return { items, checkpoint };
}

describe('GitHub connector against a local replay of the REST v3 API', () => {
  let server: ProviderServer;
  beforeAll(async () => {
    server = await startProviderServer(githubApi());
  });
  afterAll(() => server.close());

  it('lists the repositories, then issues over both Link pages, the pull request, commits and discussions', async () => {
    const { items, checkpoint } = await wholePass(ctxFor(server));
    expect(items.map((i) => `${i.type} ${i.id}`)).toEqual([
      'repository repo:octocat/Hello-World',
      'issue issue:octocat/Hello-World#1347',
      'pull_request pull_request:octocat/Hello-World#1348',
      'commit commit:octocat/Hello-World@6dcb09b5b57875f334f61aebed695e2e4193db5e',
      'discussion discussion:octocat/Hello-World#42',
    ]);
    const issue = items[1]!;
    expect(issue.content).toContain('Found a bug');
    expect(issue.content).toContain('percent sign');
    expect(issue.url).toBe('https://github.com/octocat/Hello-World/issues/1347');
    expect(issue.metadata).toMatchObject({ repo: 'octocat/Hello-World', number: 1347, labels: ['bug'], author: 'octocat' });
    expect(checkpoint).toBe('2026-01-01T00:00:00.000Z');
    // The second issues page was requested through the Link header's URL.
    expect(server.requests.some((r) => r.url.includes('/issues?') && r.url.includes('page=2'))).toBe(true);
    expect(server.requests.every((r) => r.headers.authorization === `Bearer ${GITHUB_TOKEN}` && r.headers['x-github-api-version'] === '2022-11-28')).toBe(true);
  });

  it('asks only for changes since the checkpoint on an incremental pass', async () => {
    server.requests.length = 0;
    await wholePass(ctxFor(server, { checkpoint: '2011-04-23T00:00:00.000Z', options: { repos: ['octocat/Hello-World'] } }));
    const issues = server.requests.find((r) => r.url.startsWith('/repos/octocat/Hello-World/issues'))!;
    expect(new URL(issues.url, 'http://x').searchParams.get('since')).toBe('2011-04-23T00:00:00.000Z');
    const commits = server.requests.find((r) => r.url.startsWith('/repos/octocat/Hello-World/commits'))!;
    expect(new URL(commits.url, 'http://x').searchParams.get('since')).toBe('2011-04-23T00:00:00.000Z');
    // Configured repositories: the account's repository list is never fetched.
    expect(server.requests.some((r) => r.url.startsWith('/user/repos'))).toBe(false);
  });

  it('skips discussions of a repository that has them turned off (404)', async () => {
    const off = await startProviderServer(githubApi({ discussions: false }));
    try {
      const { items } = await wholePass(ctxFor(off));
      expect(items.map((i) => i.type)).not.toContain('discussion');
      expect(items).toHaveLength(4);
    } finally {
      await off.close();
    }
  });

  it('maps a rejected token (401 Bad credentials) to ProviderAuthError', async () => {
    await expect(github.listPage(ctxFor(server, { token: 'ghp_revoked' }), null)).rejects.toBeInstanceOf(ProviderAuthError);
  });

  it('maps 403 with x-ratelimit-remaining 0 to a rate limit ending at x-ratelimit-reset', async () => {
    const limited = await startProviderServer(() => ({ status: 403, headers: ghRateHeaders(0, 1_900_000_123), body: fixture('github', 'error-403-rate-limit') }));
    try {
      const error = await github.listPage(ctxFor(limited), null).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderRateLimitError);
      expect((error as ProviderRateLimitError).retryAt.toISOString()).toBe(new Date(1_900_000_123 * 1000).toISOString());
    } finally {
      await limited.close();
    }
  });

  it('maps a secondary rate limit (429 with Retry-After) to a retry that many seconds later', async () => {
    const limited = await startProviderServer(() => ({ status: 429, headers: { 'retry-after': '120' }, body: fixture('github', 'error-429-secondary') }));
    try {
      const before = Date.now();
      const error = (await github.listPage(ctxFor(limited), null).catch((e: unknown) => e)) as ProviderRateLimitError;
      expect(error).toBeInstanceOf(ProviderRateLimitError);
      const delta = error.retryAt.getTime() - before;
      expect(delta).toBeGreaterThanOrEqual(119_000);
      expect(delta).toBeLessThanOrEqual(121_000 + (Date.now() - before));
    } finally {
      await limited.close();
    }
  });

  it('reports the remaining budget so the engine can stop at 0, and fails on 500 and on a configured repository that is gone', async () => {
    const page = await github.listPage(ctxFor(server), null);
    expect(page.rateLimit).toEqual({ remaining: 4999, resetAt: new Date(1_900_000_000 * 1000) });

    const broken = await startProviderServer(() => ({ status: 500, body: fixture('github', 'error-500') }));
    try {
      await expect(github.listPage(ctxFor(broken), null)).rejects.toMatchObject({ name: 'ProviderError', status: 500 });
    } finally {
      await broken.close();
    }
    const gone = await github.listPage(ctxFor(server, { options: { repos: ['octocat/Missing'] } }), null).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(ProviderError);
    expect((gone as ProviderError).status).toBe(404);
  });
});
