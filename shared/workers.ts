import type { App } from './app.ts';
import type { TaskFamily } from './ports/queue.ts';
import { embeddingHandlers } from './tasks/embedding-tasks.ts';
import { webhookDeliveryHandlers } from './tasks/webhook-delivery.ts';
import { siemForwardingHandlers } from './tasks/siem-forwarding.ts';
import { integrationSyncHandlers } from './tasks/integration-sync.ts';
import { retentionHandlers } from './tasks/retention.ts';
import { intelligenceHandlers } from './tasks/intelligence.ts';
import { summarizationHandlers } from './tasks/summarization.ts';
import { configuredSummarizer } from './tasks/configured-summarizer.ts';
import { createTaskWorker, type TaskHandler, type TaskWorker } from './tasks/worker-runtime.ts';

/** Task handlers of each family, shared by the worker Lambdas and the local queue. */
export function taskHandlers(app: App): Partial<Record<TaskFamily, Record<string, TaskHandler>>> {
  return {
    embedding: embeddingHandlers(app.memories, { db: app.db.kysely, embedder: app.embedder, clock: app.clock }),
    retention: retentionHandlers({ db: app.db.kysely, vectors: app.vectors, cache: app.cache, clock: app.clock, relay: app.relay }),
    intelligence: intelligenceHandlers({ db: app.db.kysely, vectors: app.vectors, embedder: app.embedder, cache: app.cache, clock: app.clock, memories: app.memories }),
    summarization: summarizationHandlers({ db: app.db.kysely, clock: app.clock, memories: app.memories, summarizer: configuredSummarizer(app.config) }),
    'webhook-delivery': webhookDeliveryHandlers(app),
    'siem-forwarding': siemForwardingHandlers(app),
    'integration-sync': integrationSyncHandlers(app.integrations),
  };
}

/** One SQS batch handler per family that has handlers. */
export function createWorkers(app: App): Partial<Record<TaskFamily, TaskWorker>> {
  const workers: Partial<Record<TaskFamily, TaskWorker>> = {};
  for (const [family, handlers] of Object.entries(taskHandlers(app)) as Array<[TaskFamily, Record<string, TaskHandler>]>) {
    // Records of one batch run side by side for two families: webhook attempts are independent HTTP requests (one
    // slow endpoint must not queue the others; the per-endpoint cap bounds each endpoint), and embedding tasks are
    // embedded together (embedding-tasks.ts).
    const processInParallel = family === 'webhook-delivery' || family === 'embedding';
    workers[family] = createTaskWorker(family, handlers, { db: app.db, logger: app.logger, processInParallel });
  }
  return workers;
}
