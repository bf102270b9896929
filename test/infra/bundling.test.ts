import { App, Duration, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { bundleAliases, esbuildOptions, ESM_REQUIRE_BANNER, LAMBDA_BUNDLE, LAMBDA_ENTRIES, moduleClosure, REPO_ROOT } from '../../infra/bundling.ts';
import { MemorySyncFunction } from '../../infra/constructs/memorysync-function.ts';
import { appSearchRole } from '../../infra/handlers/search-access.ts';
import { SYNTH_TIMEOUT_MS } from './synth.ts';

const apiEntry = resolve(REPO_ROOT, LAMBDA_ENTRIES.api);

describe('Lambda bundling', () => {
  // The one test that runs esbuild through NodejsFunction for real; everything else synthesizes stubs.
  it.skipIf(!existsSync(apiEntry))('bundles functions/api.ts as minified ESM with the require banner and a source map, without PGlite', () => {
    const outdir = join(REPO_ROOT, 'node_modules/.cache/memorysync-bundling-test', String(process.pid));
    onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
    const app = new App({ outdir });
    const stack = new Stack(app, 'BundlingTest');
    const fn = new MemorySyncFunction(stack, 'Api', {
      entry: LAMBDA_ENTRIES.api,
      description: 'bundling test',
      timeout: Duration.seconds(29),
      key: new kms.Key(stack, 'Key'),
    });
    const assembly = app.synth();
    const template = assembly.getStackByName('BundlingTest').template;
    const lambda = Object.values<any>(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function');
    expect(lambda.Properties.Handler).toBe('index.handler');
    expect(fn.function.runtime.name).toBe('nodejs22.x');

    const assetDirs = readdirSync(assembly.directory).filter((d) => d.startsWith('asset.'));
    const bundle = assetDirs.map((d) => join(assembly.directory, d, 'index.mjs')).find((f) => existsSync(f));
    expect(bundle).toBeDefined();
    const code = readFileSync(bundle!, 'utf8');
    expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    // size against the 1.5 MB target is a bench figure (bench/lambda-bundles.ts), not a pass/fail here
    expect(statSync(bundle!).size).toBeGreaterThan(0);
    expect(existsSync(`${bundle}.map`)).toBe(true);
    // PGlite is replaced by the stub; the runtime's AWS SDK stays external
    expect(code).toContain('PGlite is not bundled into the Lambda functions');
    expect(code).toMatch(/from"@aws-sdk\/client-s3"/);
    expect(code).not.toContain('pglite.wasm');
    // lazily used packages and the offline embedder's vocabulary ship beside the bundle, copied at synth
    const dir = join(bundle!, '..');
    expect(existsSync(join(dir, 'node_modules/js-tiktoken/package.json'))).toBe(true);
    expect(existsSync(join(dir, 'node_modules/swagger-ui-dist/package.json'))).toBe(true);
    expect(existsSync(join(dir, 'data/vocabulary.bin'))).toBe(true);
    // the document-text libraries stay out of the API: a lazy import of an external package, no pdf.js inside
    expect(code).toMatch(/import\("unpdf"\)/);
    expect(code).not.toContain('GlobalWorkerOptions');
    expect(existsSync(join(dir, 'node_modules/unpdf'))).toBe(false);
  }, SYNTH_TIMEOUT_MS);

  it('copies the document libraries with their whole dependency closure (integration-sync worker only)', () => {
    const closure = moduleClosure(LAMBDA_BUNDLE.documentModules);
    for (const m of LAMBDA_BUNDLE.documentModules) {
      expect(closure).toContain(m);
      expect(LAMBDA_BUNDLE.externalModules).toContain(m);
    }
    // mammoth reads the package with jszip and parses XML with @xmldom/xmldom
    expect(closure).toEqual(expect.arrayContaining(['jszip', '@xmldom/xmldom']));
    for (const m of closure) expect(existsSync(join(REPO_ROOT, 'node_modules', m, 'package.json'))).toBe(true);
    expect(() => moduleClosure(['no-such-package-memorysync'])).toThrow(/not installed/);
  });

  it('gives the bench the same esbuild settings the construct uses', () => {
    const options = esbuildOptions(LAMBDA_ENTRIES.api, '/tmp/out/index.mjs');
    expect(options).toMatchObject({
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: LAMBDA_BUNDLE.target,
      minify: true,
      sourcemap: true,
      banner: { js: ESM_REQUIRE_BANNER },
      external: ['@aws-sdk/*', 'pg-native', 'js-tiktoken', 'swagger-ui-dist', 'unpdf', 'mammoth', 'fflate', 'fast-xml-parser'],
    });
    expect(options.alias).toEqual(bundleAliases());
    for (const stub of Object.values(bundleAliases())) expect(existsSync(stub)).toBe(true);
  });
});

describe('OpenSearch app role', () => {
  it('limits the app to memorysync-* indexes', () => {
    const role = appSearchRole() as { index_permissions: Array<{ index_patterns: string[] }> };
    expect(role.index_permissions.flatMap((p) => p.index_patterns)).toEqual(['memorysync-*']);
  });
});
