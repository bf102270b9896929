import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { LAMBDA_ENTRIES } from '../bundling.ts';
import { MemorySyncFunction, type FunctionPlacement } from './memorysync-function.ts';

export interface SchedulesProps {
  placement: FunctionPlacement;
  jobs: ReadonlyArray<{ job: string; every: Duration }>;
  /** EventBridge Scheduler on AWS; EventBridge rules where Scheduler never fires (LocalStack) */
  driver: 'scheduler' | 'rules';
}

/**
 * The schedule Lambda and what triggers it. Reserved concurrency 1 plus the app's DB lease mean two
 * runs never overlap; a run that cannot start within five minutes is dropped rather than queued, so
 * missed runs collapse into the next one (the seed scheduler's coalesce / max_instances=1).
 */
export class Schedules extends Construct {
  readonly handler: MemorySyncFunction;
  /** failed Scheduler deliveries, after retries (Scheduler driver only) */
  readonly deadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.handler = new MemorySyncFunction(this, 'Handler', {
      ...props.placement,
      entry: LAMBDA_ENTRIES.schedule,
      description: 'MemorySync scheduled jobs ({"job": name})',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      reservedConcurrentExecutions: 1,
    });
    const staleAfter = Duration.minutes(5);
    this.handler.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: staleAfter });

    if (props.driver === 'scheduler') {
      this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: props.placement.key,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      for (const { job, every } of props.jobs) {
        new scheduler.Schedule(this, `Job-${job}`, {
          description: `MemorySync ${job} every ${every.toHumanString()}`,
          schedule: scheduler.ScheduleExpression.rate(every),
          timeWindow: scheduler.TimeWindow.off(),
          key: props.placement.key,
          target: new schedulerTargets.LambdaInvoke(this.handler.function, {
            input: scheduler.ScheduleTargetInput.fromObject({ job }),
            retryAttempts: 2,
            maxEventAge: staleAfter,
            deadLetterQueue: this.deadLetterQueue,
          }),
        });
      }
    } else {
      for (const { job, every } of props.jobs) {
        new events.Rule(this, `Rule-${job}`, {
          description: `MemorySync ${job} every ${every.toHumanString()}`,
          schedule: events.Schedule.rate(every),
          targets: [
            new eventsTargets.LambdaFunction(this.handler.function, {
              event: events.RuleTargetInput.fromObject({ job }),
              retryAttempts: 2,
              maxEventAge: Duration.minutes(5),
            }),
          ],
        });
      }
    }
  }
}
