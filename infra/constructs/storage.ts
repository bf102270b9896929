import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Object-store prefix where poison payloads are parked (SIEM dead letters); expired by lifecycle. */
export const DEAD_LETTER_PREFIX = 'dead-letters/';

export interface StorageProps {
  /** days dead-lettered payloads are kept */
  deadLetterRetentionDays?: number;
  /** destroy the bucket with the stack (LocalStack / throw-away stacks only) */
  ephemeral?: boolean;
}

/**
 * The project key and the object store. One customer-managed key (rotated yearly) encrypts the bucket,
 * queues, secrets, log groups, the alarm topic, the database, the cache and the search domain; the app
 * also uses it as the KMS key ring's master key (envelope encryption with a per-tenant context).
 */
export class StorageAndKeys extends Construct {
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const removalPolicy = props.ephemeral ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.key = new kms.Key(this, 'ProjectKey', {
      description: `MemorySync project key (${stack.stackName})`,
      enableKeyRotation: true,
      removalPolicy,
    });
    // Encrypted log groups: CloudWatch Logs encrypts with the key, limited to this account's log groups.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:*` },
        },
      }),
    );
    // Alarms publish to the encrypted SNS topic; CloudWatch needs the key for that.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // S3 server access logging can only deliver to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
      autoDeleteObjects: props.ephemeral,
    });

    this.bucket = new s3.Bucket(this, 'Objects', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'objects/',
      lifecycleRules: [
        {
          id: 'expire-dead-letters',
          prefix: DEAD_LETTER_PREFIX,
          expiration: Duration.days(props.deadLetterRetentionDays ?? 30),
          noncurrentVersionExpiration: Duration.days(1),
        },
        { id: 'expire-old-versions', noncurrentVersionExpiration: Duration.days(30) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      removalPolicy,
      autoDeleteObjects: props.ephemeral,
    });
  }
}
