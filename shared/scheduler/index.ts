export { releaseLease, renewLease, tryAcquireLease } from './lease.ts';
export type { Lease } from './lease.ts';
export { createScheduleHandler } from './schedule-handler.ts';
export { createScheduler } from './scheduler.ts';
export type { JobContext, JobDefinition, JobRunResult, Scheduler, SchedulerOptions } from './scheduler.ts';
