import { measureBundles, measureInitTime } from './lambda-bundles.ts';
import { fmt, table } from './synthetic.ts';

/** Issue 4's benchmark: bundle size of each Lambda and module init of the API handler vs a hello-world middy handler. */
export async function benchLambda(): Promise<string> {
  const sizes = await measureBundles();
  const init = await measureInitTime();
  return [
    table('Lambda bundles (esbuild, minified ESM, as deployed; target ≤ 1.5 MB)', ['function', 'bundle (KiB)', 'source map (KiB)', 'within target'], sizes.map((s) => [s.fn, fmt(s.bytes / 1024, 0), fmt(s.mapBytes / 1024, 0), s.bytes <= 1.5 * 1024 * 1024 ? 'yes' : 'no'])),
    table(`Module init, median of ${init.runs} fresh node processes (target ≤ 1.5×)`, ['measure', 'API handler (ms)', 'hello-world middy (ms)', 'ratio'], [
      ['import of the bundled module', fmt(init.apiMs), fmt(init.helloMs), `${fmt(init.ratio, 2)}×`],
      ['process start to module ready', fmt(init.apiProcessMs), fmt(init.helloProcessMs), `${fmt(init.processRatio, 2)}×`],
    ]),
  ].join('\n');
}
