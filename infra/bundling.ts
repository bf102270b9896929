import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

/** Repository root: entries and the lock file are resolved from here, whatever the cwd. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The Lambda entry points, relative to the repository root. */
export const LAMBDA_ENTRIES = {
  api: 'functions/api.ts',
  worker: 'functions/worker.ts',
  schedule: 'functions/schedule.ts',
  migrate: 'functions/migrate.ts',
} as const;

/**
 * ESM bundles need `require` for the CommonJS packages esbuild inlines (pg, ioredis); the banner gives
 * them one without a global shim.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __memorysyncCreateRequire } from 'node:module'; const require = __memorysyncCreateRequire(import.meta.url);";

/**
 * The one description of how Lambda code is bundled. `NodejsFunction` (infra) and the bundle benchmark
 * (bench) both derive their esbuild settings from it, so the bench measures what is deployed.
 */
export const LAMBDA_BUNDLE = {
  target: 'node22',
  format: 'esm',
  minify: true,
  sourceMap: true,
  // source text stays out of the map: smaller artefact, and stack traces still resolve to file:line
  sourcesContent: false,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  // The nodejs22.x runtime ships AWS SDK v3; pg-native is an optional addon pg never needs. js-tiktoken's 1 MB
  // rank table and swagger-ui-dist's static assets are only loaded on first use (compose, /docs), so they ship
  // beside the bundle (`copiedModules`) instead of inside it.
  // The document-text libraries (shared/text/document-text.ts) are imported lazily and only by the
  // integration-sync worker: external in every bundle, copied (with their dependencies) into that worker's asset only.
  externalModules: ['@aws-sdk/*', 'pg-native', 'js-tiktoken', 'swagger-ui-dist', 'unpdf', 'mammoth', 'fflate', 'fast-xml-parser'],
  /** packages copied from the repository's node_modules into the asset's node_modules (no install at synth) */
  copiedModules: ['js-tiktoken', 'swagger-ui-dist'],
  /** packages copied, with their dependency closure, into the integration-sync worker's asset only */
  documentModules: ['unpdf', 'mammoth', 'fflate', 'fast-xml-parser'],
  /** data files the code reads beside its module: the offline embedder's vocabulary (EMBEDDER=local) */
  copiedFiles: { 'shared/adapters/local-embedder/data/vocabulary.bin': 'data/vocabulary.bin' },
  /** packages swapped for stubs: code the composition root imports but Lambda never runs */
  aliases: {
    '@electric-sql/pglite': 'infra/lambda-stubs/pglite.ts',
    '@electric-sql/pglite/vector': 'infra/lambda-stubs/pglite.ts',
  },
} as const;

/**
 * The packages and their runtime dependencies (transitively), as installed in the repository's hoisted
 * node_modules; a package's own nested node_modules travels with its directory.
 */
export function moduleClosure(names: readonly string[], root = REPO_ROOT): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const manifest = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) throw new Error(`${name} is not installed in ${root}/node_modules`);
    seen.add(name);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      // a dependency installed inside the package's own node_modules is copied with it
      if (!existsSync(join(root, 'node_modules', name, 'node_modules', dep))) visit(dep);
    }
  };
  names.forEach(visit);
  return [...seen].sort();
}

/** Aliases with absolute stub paths, as both esbuild and the CDK's esbuild CLI call take them. */
export function bundleAliases(): Record<string, string> {
  return Object.fromEntries(Object.entries(LAMBDA_BUNDLE.aliases).map(([pkg, stub]) => [pkg, resolve(REPO_ROOT, stub)]));
}

/** esbuild options equivalent to the `NodejsFunction` bundling above, for direct esbuild runs. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [resolve(REPO_ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: LAMBDA_BUNDLE.target,
    format: LAMBDA_BUNDLE.format,
    minify: LAMBDA_BUNDLE.minify,
    sourcemap: LAMBDA_BUNDLE.sourceMap,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    banner: { js: LAMBDA_BUNDLE.banner },
    external: [...LAMBDA_BUNDLE.externalModules],
    alias: bundleAliases(),
    logLevel: 'error',
  };
}
