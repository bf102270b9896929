import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // full-size reliability suites run with `npm run test:reliability`; their fast subset is test/reliability-fast/
    exclude: ['**/node_modules/**', 'test/reliability/**'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PGlite instances and servers are heavy on a 2-core machine: a few files at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
});
