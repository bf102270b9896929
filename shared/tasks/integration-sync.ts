import type { IntegrationService } from '../services/integration-service.ts';
import type { TaskHandler } from './worker-runtime.ts';

export interface SyncPayload {
  connectionId: string;
  reason?: string;
}

export interface CrawlPayload {
  jobId: string;
}

/**
 * The integration-sync family: `sync` runs one sync of a connection (pages from its stored cursor;
 * rate limits and refused tokens end the task normally, recorded on the connection, so SQS does not
 * retry what only time or a new token can fix); `crawl` runs one crawler job.
 */
export function integrationSyncHandlers(integrations: IntegrationService): Record<string, TaskHandler> {
  const sync: TaskHandler<SyncPayload> = async (task, ctx) => {
    if (!task.tenantId) return;
    const outcome = await integrations.sync(task.tenantId, task.payload.connectionId);
    ctx.logger.info('integration sync run', { connectionId: task.payload.connectionId, outcome: outcome.status });
  };
  const crawl: TaskHandler<CrawlPayload> = async (task) => {
    if (!task.tenantId) return;
    await integrations.crawl(task.tenantId, task.payload.jobId);
  };
  return { sync: sync as TaskHandler, crawl: crawl as TaskHandler };
}
