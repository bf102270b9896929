import type { Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { NagSuppressions, type NagPackSuppression } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { MemorySyncFunction } from '../constructs/memorysync-function.ts';

const managedPolicy = (name: string) => `Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/${name}`;
const arnWildcard = (logicalIdPrefix: string, suffix: string) => ({
  regex: `/^Resource::<${logicalIdPrefix}[A-Za-z0-9]*\\.Arn>${suffix.replace(/[/*]/g, (c) => `\\${c}`)}$/g`,
});

/** Findings on every app function, each accepted for the reason given. */
const FUNCTION_SUPPRESSIONS: NagPackSuppression[] = [
  {
    id: 'AwsSolutions-L1',
    reason:
      'The project targets Node.js 22 (nodejs22.x, supported by Lambda until 2027); moving to nodejs24.x is a ' +
      'deliberate upgrade with its own test run, not something a template rule should force.',
  },
  {
    id: 'AwsSolutions-IAM4',
    reason:
      'AWSLambdaBasicExecutionRole / AWSLambdaVPCAccessExecutionRole are the AWS-maintained minimum for writing ' +
      'logs and attaching VPC network interfaces; a copy would only drift from them.',
    appliesTo: [managedPolicy('AWSLambdaBasicExecutionRole'), managedPolicy('AWSLambdaVPCAccessExecutionRole')],
  },
  {
    id: 'AwsSolutions-IAM5',
    reason:
      'Resource "*" is X-Ray tracing only (xray:PutTraceSegments/PutTelemetryRecords have no resource-level ' +
      'permissions). Object keys and OpenSearch index names are per tenant and per user, so access is granted ' +
      'on the one bucket\'s objects and the one domain\'s paths, never wider.',
    appliesTo: ['Resource::*', arnWildcard('StorageObjects', '/*'), arnWildcard('SearchDomain', '/*')],
  },
];

function suppress(construct: IConstruct | undefined, suppressions: NagPackSuppression[]): void {
  if (construct) NagSuppressions.addResourceSuppressions(construct, suppressions, true);
}

/**
 * Every cdk-nag AwsSolutions finding this app accepts, in one place, each with its reason. Anything not
 * listed fails the cdk-nag test and `cdk synth`.
 */
export function applyNagSuppressions(stack: Stack): void {
  const all = stack.node.findAll();
  for (const c of all) if (c instanceof MemorySyncFunction) suppress(c, FUNCTION_SUPPRESSIONS);

  for (const c of all) {
    if (c instanceof apigw.RestApi) {
      suppress(c, [
        {
          id: 'AwsSolutions-APIG2',
          reason: 'Request validation is off by design: the app validates with zod and answers in the contract\'s error envelope.',
        },
        {
          id: 'AwsSolutions-APIG3',
          reason:
            'WAF is optional for self-hosters (about $5/month plus rules); the app rate-limits per tenant and the stage ' +
            'throttles. docs/deploy.md shows how to associate a web ACL.',
        },
        {
          id: 'AwsSolutions-APIG4',
          reason: 'Authorization happens in the API Lambda (API keys ms_live_… and JWTs), as the contract defines; /health and /auth/signup are public by contract.',
        },
        { id: 'AwsSolutions-COG4', reason: 'The contract\'s own API keys and JWTs authenticate callers, not Cognito.' },
        {
          id: 'AwsSolutions-IAM4',
          reason: 'AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy for the account-level API Gateway logging role.',
          appliesTo: [managedPolicy('AmazonAPIGatewayPushToCloudWatchLogs')],
        },
      ]);
    }
    if (c instanceof rds.CfnDBCluster && c.deletionProtection !== true) {
      suppress(c, [
        {
          id: 'AwsSolutions-RDS10',
          reason:
            'Deletion protection is on by default; it is off only when the operator asks for it with ' +
            '-c memorysync:deletionProtection=false (throw-away stacks, or the step before cdk destroy).',
        },
      ]);
    }
    if (c instanceof elasticache.CfnReplicationGroup) {
      suppress(c, [
        {
          id: 'AwsSolutions-AEC6',
          reason:
            'No AUTH token: it would have to live in REDIS_URL as plaintext Lambda environment. The cache holds only ' +
            'transient derived data, requires TLS, sits in isolated subnets and admits only the app functions\' security group.',
        },
        {
          id: 'AwsSolutions-AEC4',
          reason: 'Single-node cache in the lean profile: the app degrades to the database path when the cache is down (DESIGN §6).',
        },
      ]);
    }
    if (c instanceof secretsmanager.Secret && c.node.id === 'JwtSecret') {
      suppress(c, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'Rotating the JWT signing secret invalidates every live access token at once; rotate it deliberately ' +
            '(update the secret, then refresh sessions). The database secret does rotate every 30 days.',
        },
      ]);
    }
    if (c instanceof opensearch.Domain) {
      suppress(c, [
        {
          id: 'AwsSolutions-OS3',
          reason:
            'VPC-only domain: reachability is limited by security group to the app functions, whose ENI addresses change; ' +
            'an IP allowlist adds nothing there. Requests are also IAM-signed and mapped by fine-grained access control.',
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: 'CDK-managed custom resource that writes the log-group resource policy for the domain logs (logs:PutResourcePolicy has no resource scope).',
          appliesTo: ['Resource::*'],
        },
      ]);
    }
  }

  suppress(stack.node.tryFindChild('Schedules'), [
    { id: 'AwsSolutions-SQS3', reason: 'This queue is itself the dead-letter queue of the EventBridge Scheduler targets.' },
  ]);

  for (const c of stack.node.children) {
    const id = c.node.id;
    // aws-scheduler-targets creates one role per target function at stack level
    if (id.startsWith('SchedulerRoleForTarget')) {
      suppress(c, [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'The Scheduler role may invoke the schedule function and its versions (function ARN + ":*"), nothing else.',
          appliesTo: [arnWildcard('SchedulesHandlerFunction', ':*')],
        },
      ]);
    }
    // CDK's own singleton helper functions (log retention, SDK-call custom resources).
    if (id.startsWith('LogRetention') || id.startsWith('AWS679f53fac002430cb0da5b7982bd2287')) {
      suppress(c, [
        {
          id: 'AwsSolutions-IAM4',
          reason: 'CDK-provided helper function uses the AWS-maintained basic execution policy.',
          appliesTo: [managedPolicy('AWSLambdaBasicExecutionRole')],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'CDK-provided helper: log-retention calls (logs:PutRetentionPolicy on Aurora\'s log group, created by RDS) and ' +
            'the OpenSearch access-policy update, which needs kms:List*/Describe* on the domain key.',
          appliesTo: ['Resource::*', 'Action::kms:List*', 'Action::kms:Describe*'],
        },
        { id: 'AwsSolutions-L1', reason: 'CDK-provided helper function; its runtime is chosen by aws-cdk-lib.' },
      ]);
    }
  }
}
