import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Data } from './data.ts';
import type { MemorySyncFunction } from './memorysync-function.ts';
import type { Queues } from './queues.ts';
import type { Search } from './search.ts';

/*
 * Each helper sets the environment variables shared/config.ts reads for one dependency together with
 * the narrowest grant that dependency needs, so a function can never hold a setting without access
 * or access without a setting.
 */

/** Aurora through RDS Proxy (or the cluster): host, port, name, TLS, and read access to the secret. */
export function bindDatabase(fn: MemorySyncFunction, data: Data): void {
  fn.addEnvironment('DATABASE_SECRET_ARN', data.secret.secretArn)
    .addEnvironment('DATABASE_HOST', data.host)
    .addEnvironment('DATABASE_PORT', String(data.port))
    .addEnvironment('DATABASE_NAME', data.databaseName)
    .addEnvironment('DATABASE_SSL', 'true')
    // one or two connections per sandbox; the proxy (or bounded concurrency) does the pooling
    .addEnvironment('DATABASE_POOL_MAX', '2');
  data.secret.grantRead(fn.function);
}

/** A PostgreSQL reachable by URL (the LocalStack profile's compose container); no AWS grant. */
export function bindDatabaseUrl(fn: MemorySyncFunction, url: string): void {
  fn.addEnvironment('DATABASE_URL', url).addEnvironment('DATABASE_SSL', 'false').addEnvironment('DATABASE_POOL_MAX', '2');
}

/** Producer access to every task queue, plus the family → URL map the SQS queue adapter reads. */
export function bindQueues(fn: MemorySyncFunction, queues: Queues, key: kms.IKey, endpoint?: string): void {
  const urls: Record<string, string> = {};
  for (const { family, queue } of queues.all()) urls[family] = queue.queueUrl;
  fn.addEnvironment('QUEUE', 'sqs').addEnvironment('SQS_QUEUE_URLS', Stack.of(fn).toJsonString(urls));
  if (endpoint) fn.addEnvironment('SQS_ENDPOINT', endpoint);
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
      resources: queues.all().map(({ queue }) => queue.queueArn),
    }),
  );
  // SSE-KMS queues: a producer needs a data key to encrypt what it sends
  key.grant(fn.function, 'kms:GenerateDataKey', 'kms:Decrypt');
}

/**
 * The operator's dead-letter tooling (GET /admin/dead-letters, re-drive) on the API function only:
 * the family → DLQ URL map, and receive/delete/attributes on the dead-letter queues and nothing else.
 * Sending back to the task queues is bindQueues' SendMessage; KMS decrypt comes with bindQueues too.
 */
export function bindDeadLetterQueues(fn: MemorySyncFunction, queues: Queues): void {
  const urls: Record<string, string> = {};
  for (const { family, deadLetterQueue } of queues.all()) urls[family] = deadLetterQueue.queueUrl;
  fn.addEnvironment('SQS_DLQ_URLS', Stack.of(fn).toJsonString(urls));
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      resources: queues.all().map(({ deadLetterQueue }) => deadLetterQueue.queueArn),
    }),
  );
}

/** Get/put/delete objects and list the bucket; SSE-KMS through the project key. */
export function bindObjectStore(fn: MemorySyncFunction, bucket: s3.IBucket, key: kms.IKey, endpoint?: string): void {
  fn.addEnvironment('OBJECT_STORE', 's3').addEnvironment('S3_BUCKET', bucket.bucketName);
  if (endpoint) fn.addEnvironment('S3_ENDPOINT', endpoint);
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: [bucket.arnForObjects('*')],
    }),
  );
  fn.function.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
  key.grant(fn.function, 'kms:GenerateDataKey', 'kms:Decrypt');
}

/** The KMS key ring: data keys generated and unwrapped under the project key, nothing else. */
export function bindKeyRing(fn: MemorySyncFunction, key: kms.IKey): void {
  fn.addEnvironment('KEY_RING', 'kms').addEnvironment('KMS_KEY_ID', key.keyArn);
  key.grant(fn.function, 'kms:GenerateDataKey', 'kms:Decrypt');
}

/** OpenSearch (signed HTTP + a security-plugin role), or pgvector in the database. */
export function bindVectorStore(
  fn: MemorySyncFunction,
  search: Search | undefined,
  namespaceMode: 'index-per-user' | 'shared',
): void {
  if (!search) {
    fn.addEnvironment('VECTOR_STORE', 'pgvector');
    return;
  }
  fn.addEnvironment('VECTOR_STORE', 'opensearch')
    .addEnvironment('OPENSEARCH_ENDPOINT', `https://${search.domain.domainEndpoint}`)
    .addEnvironment('OPENSEARCH_NAMESPACE_MODE', namespaceMode);
  search.allowApp(fn.function.role!, fn.function);
}

/** Redis URL; network reachability comes from the shared app security group. */
export function bindCache(fn: MemorySyncFunction, url: string): void {
  fn.addEnvironment('REDIS_URL', url);
}

/** The JWT signing secret, read once per cold start. */
export function bindJwtSecret(fn: MemorySyncFunction, secret: secretsmanager.ISecret): void {
  fn.addEnvironment('JWT_SECRET_ARN', secret.secretArn);
  secret.grantRead(fn.function);
}

/** Titan text embeddings v2 on Bedrock: invoke that one foundation model only. */
export const BEDROCK_EMBEDDING_MODEL_ID = 'amazon.titan-embed-text-v2:0';

export function bindEmbedder(fn: MemorySyncFunction, embedder: 'bedrock' | 'local'): void {
  fn.addEnvironment('EMBEDDER', embedder);
  if (embedder !== 'bedrock') return;
  const stack = Stack.of(fn);
  fn.addEnvironment('BEDROCK_EMBEDDING_MODEL_ID', BEDROCK_EMBEDDING_MODEL_ID);
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['bedrock:InvokeModel'],
      resources: [`arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${BEDROCK_EMBEDDING_MODEL_ID}`],
    }),
  );
}
