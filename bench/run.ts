import { cpus, totalmem } from 'node:os';
import { benchCore } from './core.ts';
import { benchLambda } from './lambda.ts';
import { benchWebhookThroughput, benchWorkers } from './workers.ts';

/**
 * `npm run bench [-- --quick]`: prints every benchmark table of the project (markdown), with the
 * machine it ran on. Speed is measured here, never asserted in tests.
 */
const quick = process.argv.includes('--quick');
const sections: Array<[string, () => Promise<string>]> = [
  ['core', () => benchCore({ memories: quick ? 1_000 : 10_000, queries: quick ? 50 : 200 })],
  ['lambda', () => benchLambda()],
  ['workers', () => benchWorkers()],
  // also part of `workers`; alone: `npm run bench -- --only=webhooks`
  ['webhooks', () => benchWebhookThroughput()],
];

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
process.stdout.write(`# MemorySync benchmarks\n\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}${quick ? ' (quick run)' : ''}\n`);
for (const [name, run] of sections) {
  if (only ? only !== name : name === 'webhooks') continue;
  const started = performance.now();
  process.stdout.write(`${await run()}\n\n(${name}: ${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
}
