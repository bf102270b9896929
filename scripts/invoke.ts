import { readFileSync } from 'node:fs';
import type { SQSEvent } from 'aws-lambda';
import { createApp } from '#shared/app.ts';
import { loadConfig } from '#shared/config.ts';
import { TASK_FAMILIES, type TaskFamily } from '#shared/ports/queue.ts';
import { scheduledJobs } from '#shared/jobs.ts';
import { createScheduleHandler, createScheduler } from '#shared/scheduler/index.ts';
import { createWorkers } from '#shared/workers.ts';
import { lambdaContext } from '#local/proxy-event.ts';

/**
 * `npm run invoke -- <api|worker|schedule> <event.json> [--family <family>]`: runs a Lambda handler
 * once, locally, on the embedded adapters (the data dir of `npm start`), and prints its result.
 */
const [fn, eventPath] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const familyArg = process.argv.includes('--family') ? process.argv[process.argv.indexOf('--family') + 1] : undefined;
if (!fn || !eventPath || !['api', 'worker', 'schedule'].includes(fn)) {
  process.stderr.write('usage: npm run invoke -- <api|worker|schedule> <event.json> [--family <task family>]\n');
  process.exit(2);
}
const event = JSON.parse(readFileSync(eventPath, 'utf8'));
const app = await createApp(loadConfig({ ...process.env, DEV_BOOTSTRAP: 'false', LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN' }));
try {
  let result: unknown;
  if (fn === 'api') {
    const devKey = (() => {
      try {
        return (JSON.parse(readFileSync(`${app.config.MEMORYSYNC_DATA_DIR}/dev.json`, 'utf8')) as { apiKey: string }).apiKey;
      } catch {
        return undefined;
      }
    })();
    // Sample events carry a placeholder key; the local dev key replaces it so they run as written.
    for (const [k, v] of Object.entries(event.headers ?? {})) {
      if (typeof v === 'string' && v.includes('REPLACE_WITH_YOUR_API_KEY') && devKey) event.headers[k] = devKey;
    }
    result = await app.api(event, lambdaContext());
  } else if (fn === 'worker') {
    const family = (familyArg ?? (event as SQSEvent).Records?.[0]?.messageAttributes?.family?.stringValue) as TaskFamily;
    if (!TASK_FAMILIES.includes(family)) throw new Error(`unknown task family ${family}; pass --family`);
    const worker = createWorkers(app)[family];
    if (!worker) throw new Error(`no handlers for ${family}`);
    result = await worker(event);
  } else {
    result = await createScheduleHandler(createScheduler({ db: app.db, jobs: scheduledJobs(app), logger: app.logger }))(event);
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await app.close();
}
