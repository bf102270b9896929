import { Duration } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { LAMBDA_BUNDLE, LAMBDA_ENTRIES } from '../bundling.ts';
import { MemorySyncFunction, type FunctionPlacement } from './memorysync-function.ts';
import type { Queues } from './queues.ts';

export interface WorkersProps {
  placement: FunctionPlacement;
  queues: Queues;
  /** SQS event source maximum concurrency per family (2…1000) */
  maxConcurrency: number;
  batchSize?: number;
}

/**
 * One worker Lambda per task family, fed by its queue. Handlers report partial batch failures, so
 * one bad message is retried (and eventually dead-lettered) without replaying its batch.
 */
export class Workers extends Construct {
  readonly byFamily: ReadonlyMap<string, MemorySyncFunction>;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    const byFamily = new Map<string, MemorySyncFunction>();
    for (const { family, queue, workerTimeout } of props.queues.all()) {
      const worker = new MemorySyncFunction(this, family, {
        ...props.placement,
        entry: LAMBDA_ENTRIES.worker,
        description: `MemorySync ${family} worker`,
        timeout: workerTimeout,
        memorySize: 1024,
        environment: { TASK_FAMILY: family },
        // only the integration sync reads PDF and Office files
        ...(family === 'integration-sync' ? { extraModules: LAMBDA_BUNDLE.documentModules } : {}),
      });
      worker.function.addEventSource(
        new SqsEventSource(queue, {
          batchSize: props.batchSize ?? 10,
          maxBatchingWindow: Duration.seconds(1),
          reportBatchItemFailures: true,
          maxConcurrency: Math.max(2, props.maxConcurrency),
        }),
      );
      byFamily.set(family, worker);
    }
    this.byFamily = byFamily;
  }

  all(): MemorySyncFunction[] {
    return [...this.byFamily.values()];
  }
}
