import { createApp } from '#shared/app.ts';
import { loadConfig } from '#shared/config.ts';
import { scheduledJobs } from '#shared/jobs.ts';
import { createScheduleHandler, createScheduler } from '#shared/scheduler/index.ts';

const handlerPromise = createApp(loadConfig({ ...process.env, DEV_BOOTSTRAP: 'false', MEMORYSYNC_DATA_DIR: '/tmp/memorysync' })).then((app) =>
  createScheduleHandler(createScheduler({ db: app.db, jobs: scheduledJobs(app), logger: app.logger })),
);

/** EventBridge Scheduler target (`{"job": "<name>"}`); the DB lease makes overlapping runs impossible. */
export const handler = async (event: { job: string }) => (await handlerPromise)(event);
