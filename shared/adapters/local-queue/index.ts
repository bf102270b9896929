export { createLocalQueue } from './local-queue.ts';
export type { DeadLetter, FamilyQueueStats, LocalQueue, LocalQueueOptions, RunUntilIdleOptions, SqsBatchHandler } from './local-queue.ts';
