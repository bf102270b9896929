import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { esbuildOptions, LAMBDA_ENTRIES, REPO_ROOT } from '../infra/bundling.ts';

/**
 * Bundles live inside the repository (node_modules/.cache) so the modules the Lambda runtime provides
 * (@aws-sdk/*, left external exactly as in the deployed bundle) resolve from node_modules here.
 */
const OUT_DIR = resolve(REPO_ROOT, 'node_modules/.cache/memorysync-lambda-bench');

export interface BundleSize {
  fn: string;
  /** minified index.mjs, the code Lambda loads (source map excluded) */
  bytes: number;
  /** the source map shipped beside it, for reference */
  mapBytes: number;
}

async function bundle(name: string, entry: string): Promise<string> {
  const outfile = join(OUT_DIR, name, 'index.mjs');
  await build(esbuildOptions(entry, outfile));
  return outfile;
}

/** Bundles every Lambda entry in functions/ with the deployed esbuild settings and reports sizes. */
export async function measureBundles(): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const [fn, entry] of Object.entries(LAMBDA_ENTRIES)) {
    if (!existsSync(resolve(REPO_ROOT, entry))) continue;
    const outfile = await bundle(fn, entry);
    sizes.push({ fn, bytes: statSync(outfile).size, mapBytes: statSync(`${outfile}.map`).size });
  }
  return sizes;
}

export interface InitTimes {
  runs: number;
  /** median ms to import the bundled module in a fresh node process */
  apiMs: number;
  helloMs: number;
  ratio: number;
  /** median ms from process start to module ready (includes node's own start-up, like Lambda's init) */
  apiProcessMs: number;
  helloProcessMs: number;
  processRatio: number;
}

const HELLO_ENTRY = `import middy from '@middy/core';
export const handler = middy().handler(async () => ({ statusCode: 200, body: 'hello' }));
`;

// Runs in the child: import time around the bundle, and time since the process started.
const PROBE = `const t0 = performance.now();
await import(process.argv[1]);
const t1 = performance.now();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, processMs: t1 }));
process.exit(0);`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

function probe(bundlePath: string, env: NodeJS.ProcessEnv): { importMs: number; processMs: number } {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, pathToFileURL(bundlePath).href], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`init probe failed for ${bundlePath}: ${child.stderr.slice(0, 2000)}`);
  return JSON.parse(child.stdout);
}

/**
 * Module init time of the bundled API handler against a bundled hello-world middy handler: fresh node
 * processes, alternating, `runs` each, medians compared. The API bundle's environment is an AWS-like
 * configuration so its module scope does what it does on Lambda (start building the app).
 */
export async function measureInitTime(runs = 7): Promise<InitTimes> {
  const apiBundle = await bundle('api', LAMBDA_ENTRIES.api);
  mkdirSync(join(OUT_DIR, 'hello-src'), { recursive: true });
  const helloSrc = join(OUT_DIR, 'hello-src', 'hello.ts');
  writeFileSync(helloSrc, HELLO_ENTRY);
  const helloBundle = await bundle('hello', helloSrc);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    POWERTOOLS_SERVICE_NAME: 'memorysync',
    LOG_LEVEL: 'SILENT',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    MEMORYSYNC_DATA_DIR: join(OUT_DIR, 'data'),
  };
  const api: Array<{ importMs: number; processMs: number }> = [];
  const hello: Array<{ importMs: number; processMs: number }> = [];
  for (let i = 0; i < runs; i++) {
    api.push(probe(apiBundle, env));
    hello.push(probe(helloBundle, env));
  }
  const apiMs = median(api.map((r) => r.importMs));
  const helloMs = median(hello.map((r) => r.importMs));
  const apiProcessMs = median(api.map((r) => r.processMs));
  const helloProcessMs = median(hello.map((r) => r.processMs));
  return {
    runs,
    apiMs,
    helloMs,
    ratio: apiMs / helloMs,
    apiProcessMs,
    helloProcessMs,
    processRatio: apiProcessMs / helloProcessMs,
  };
}

/** Targets from the issue: bundle ≤ 1.5 MB each, API init ≤ 1.5× hello-world. */
export const BUNDLE_TARGET_BYTES = 1.5 * 1024 * 1024;
export const INIT_RATIO_TARGET = 1.5;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sizes = await measureBundles();
  console.table(sizes.map((s) => ({ ...s, kB: (s.bytes / 1024).toFixed(1), withinTarget: s.bytes <= BUNDLE_TARGET_BYTES })));
  const init = await measureInitTime();
  console.table([init]);
}
