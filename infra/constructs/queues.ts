import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface TaskQueue {
  family: string;
  queue: sqs.Queue;
  deadLetterQueue: sqs.Queue;
  /** the consuming function's timeout, which the visibility timeout is derived from */
  workerTimeout: Duration;
}

export interface QueuesProps {
  key: kms.IKey;
  families: readonly string[];
  workerTimeout: (family: string) => Duration;
  /** deliveries before a message is parked in the DLQ */
  maxReceiveCount?: number;
}

/** AWS guidance for SQS → Lambda: visibility timeout at least six times the function timeout. */
export const VISIBILITY_FACTOR = 6;

/**
 * One queue and one dead-letter queue per task family, encrypted with the project key (SSE-KMS), TLS
 * enforced by queue policy. Poison messages land in the DLQ after `maxReceiveCount` deliveries.
 */
export class Queues extends Construct {
  readonly byFamily: ReadonlyMap<string, TaskQueue>;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    const byFamily = new Map<string, TaskQueue>();
    for (const family of props.families) {
      const deadLetterQueue = new sqs.Queue(this, `${family}-dlq`, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: props.key,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      const workerTimeout = props.workerTimeout(family);
      const queue = new sqs.Queue(this, family, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: props.key,
        // one data key per 5 minutes instead of per message keeps KMS calls (and cost) low
        dataKeyReuse: Duration.minutes(5),
        enforceSSL: true,
        visibilityTimeout: Duration.seconds(workerTimeout.toSeconds() * VISIBILITY_FACTOR),
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
      });
      byFamily.set(family, { family, queue, deadLetterQueue, workerTimeout });
    }
    this.byFamily = byFamily;
  }

  all(): TaskQueue[] {
    return [...this.byFamily.values()];
  }
}
