import { RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/**
 * A log group encrypted with the project key, with a retention, removed with the stack: logs are
 * operational data, not records to outlive the deployment.
 */
export function encryptedLogGroup(
  scope: Construct,
  id: string,
  key: kms.IKey,
  retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
): logs.LogGroup {
  return new logs.LogGroup(scope, id, { retention, encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
}
