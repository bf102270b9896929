import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PGlite instances and servers are heavy on a 2-core machine: a few files at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
});
