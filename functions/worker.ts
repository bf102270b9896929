import type { SQSEvent } from 'aws-lambda';
import { createApp } from '#shared/app.ts';
import { loadConfig } from '#shared/config.ts';
import { TASK_FAMILIES, type TaskFamily } from '#shared/ports/queue.ts';
import { createWorkers } from '#shared/workers.ts';

const config = loadConfig({ ...process.env, DEV_BOOTSTRAP: 'false', MEMORYSYNC_DATA_DIR: '/tmp/memorysync' });
const family = config.TASK_FAMILY as TaskFamily;
if (!TASK_FAMILIES.includes(family)) throw new Error(`TASK_FAMILY must be one of ${TASK_FAMILIES.join(', ')}`);

const worker = createApp(config).then((app) => {
  const w = createWorkers(app)[family];
  if (!w) throw new Error(`no handlers for task family ${family}`);
  return w;
});

/** SQS event source with ReportBatchItemFailures: returns the failed message ids. */
export const handler = async (event: SQSEvent) => (await worker)(event);
