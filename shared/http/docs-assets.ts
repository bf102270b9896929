import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The files the /docs page loads, served from the `swagger-ui-dist` package (no CDN: offline users too). */
export const DOCS_ASSETS = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'init.js': 'text/javascript; charset=utf-8',
} as const;
export type DocsAsset = keyof typeof DOCS_ASSETS;

/** Starts Swagger UI on the document next to the page; a separate file so the page's CSP needs no inline script. */
const INIT_JS = `window.addEventListener('load', function () {
  var base = window.location.pathname.replace(/\\/docs\\/?$/, '');
  window.ui = SwaggerUIBundle({ url: base + '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, layout: 'BaseLayout' });
});
`;

/** Loaded lazily, once per cold start: the bundle is 1.7 MB and most invocations never serve it. */
const cache = new Map<DocsAsset, Promise<string | undefined>>();

/** The asset's text, or `undefined` when the package is not deployed beside the code (see docs/identity.md). */
export function docsAsset(name: DocsAsset): Promise<string | undefined> {
  if (name === 'init.js') return Promise.resolve(INIT_JS);
  let hit = cache.get(name);
  if (!hit) {
    hit = (async () => {
      try {
        const dir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
        return await readFile(join(dir, name), 'utf8');
      } catch {
        return undefined;
      }
    })();
    cache.set(name, hit);
  }
  return hit;
}

/** The page; asset URLs are relative so the page works under an API Gateway stage prefix too. */
export function docsPage(path: string): string {
  const prefix = path.endsWith('/') ? 'assets/' : 'docs/assets/';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MemorySync API reference</title>
<link rel="stylesheet" href="${prefix}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${prefix}swagger-ui-bundle.js"></script>
<script src="${prefix}init.js"></script>
</body>
</html>
`;
}

/** Scripts and styles from this origin only; Swagger UI sets inline style attributes, and fetches the document. */
export const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
