import { fixture, type ProviderHandler } from './provider-server.ts';

export const GITHUB_TOKEN = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
const REPO = '/repos/octocat/Hello-World';

/** Rate-limit headers as GitHub sends them on every REST answer. */
export const ghRateHeaders = (remaining = 4999, reset = 1_900_000_000) => ({
  'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(reset), 'x-ratelimit-used': String(5000 - remaining), 'x-ratelimit-resource': 'core',
});

/**
 * GitHub REST v3 for one token and one repository, from the documented examples: /user/repos, issues
 * in two Link-paginated pages (the second holds a pull request), commits and discussions.
 */
export function githubApi(options: { token?: string; discussions?: boolean } = {}): ProviderHandler {
  const token = options.token ?? GITHUB_TOKEN;
  return (req) => {
    if (req.headers.authorization !== `Bearer ${token}`) return { status: 401, body: fixture('github', 'error-401') };
    const url = new URL(req.url, 'http://x');
    const headers = ghRateHeaders();
    if (url.pathname === '/user/repos') return { headers, body: fixture('github', 'user-repos') };
    if (url.pathname === `${REPO}/issues`) {
      const page2 = url.searchParams.get('page') === '2';
      const link = page2
        ? `<{{base}}${REPO}/issues?state=all&per_page=100&page=1>; rel="prev", <{{base}}${REPO}/issues?state=all&per_page=100&page=1>; rel="first"`
        : `<{{base}}${REPO}/issues?state=all&per_page=100&page=2>; rel="next", <{{base}}${REPO}/issues?state=all&per_page=100&page=2>; rel="last"`;
      return { headers: { ...headers, link }, body: fixture('github', page2 ? 'issues-page2' : 'issues-page1') };
    }
    if (url.pathname === `${REPO}/commits`) return { headers, body: fixture('github', 'commits') };
    if (url.pathname === `${REPO}/discussions`) return options.discussions === false ? { status: 404, headers, body: fixture('github', 'error-404') } : { headers, body: fixture('github', 'discussions') };
    return { status: 404, headers, body: fixture('github', 'error-404') };
  };
}
