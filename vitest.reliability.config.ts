import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/**
 * The reliability suites (`npm run test:reliability`): load, faults, fuzzing, tenancy, security and
 * deletion at full size. One file at a time so the load figures are not shared with another suite.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: existsSync('test/support/global-setup.ts') ? ['test/support/global-setup.ts'] : [],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    pool: 'forks',
  },
});
