import { z } from 'zod';
import type { JobRunResult, Scheduler } from './scheduler.ts';

const scheduleEventSchema = z.object({ job: z.string().min(1) });

/**
 * The schedule Lambda's handler: EventBridge Scheduler (or a rule, in the LocalStack profile) invokes it
 * with `{ "job": "<name>" }`. A skipped run returns normally; a failed run throws so it shows in the
 * function's error metric.
 */
export function createScheduleHandler(scheduler: Scheduler): (event: unknown) => Promise<JobRunResult> {
  return async (event) => {
    const parsed = scheduleEventSchema.safeParse(event);
    if (!parsed.success) throw new Error('Schedule event must be { "job": "<name>" }');
    const result = await scheduler.runJob(parsed.data.job);
    if (result.status === 'failed') throw new Error(`Job ${result.job} failed: ${result.error}`);
    return result;
  };
}
