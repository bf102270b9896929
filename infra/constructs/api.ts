import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LAMBDA_ENTRIES } from '../bundling.ts';
import { encryptedLogGroup } from './log-group.ts';
import { MemorySyncFunction, type FunctionPlacement } from './memorysync-function.ts';

export interface ApiProps {
  placement: FunctionPlacement;
  stageName?: string;
  /** steady-state requests per second and burst, for the whole stage */
  rateLimit?: number;
  burstLimit?: number;
  reservedConcurrency?: number;
}

/**
 * REST API (v1: LocalStack community emulates it, and it has stage throttling and access logs) with a
 * greedy proxy on `/` and `/{proxy+}` into one API Lambda running the middy chain. Request validation
 * stays off: the app validates with its zod schemas and answers in the contract's error envelope.
 */
export class Api extends Construct {
  readonly handler: MemorySyncFunction;
  readonly restApi: apigw.LambdaRestApi;
  readonly stageName: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.stageName = props.stageName ?? 'prod';
    this.handler = new MemorySyncFunction(this, 'Handler', {
      ...props.placement,
      entry: LAMBDA_ENTRIES.api,
      description: 'MemorySync API (API Gateway proxy → middy chain → router)',
      // API Gateway's integration timeout is 29 s; the app's own budgets are far below
      timeout: Duration.seconds(29),
      memorySize: 1024,
      reservedConcurrentExecutions: props.reservedConcurrency,
    });
    const accessLogs = encryptedLogGroup(this, 'AccessLogs', props.placement.key, logs.RetentionDays.THREE_MONTHS);
    this.restApi = new apigw.LambdaRestApi(this, 'RestApi', {
      handler: this.handler.function,
      proxy: true,
      description: 'MemorySync memory API',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.DESTROY,
      deployOptions: {
        stageName: this.stageName,
        throttlingRateLimit: props.rateLimit ?? 200,
        throttlingBurstLimit: props.burstLimit ?? 400,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
      },
    });
  }
}
