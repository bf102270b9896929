import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { TASK_FAMILIES } from '../../shared/ports/queue.ts';
import { VISIBILITY_FACTOR } from '../../infra/constructs/queues.ts';
import { SCHEDULED_JOBS } from '../../infra/profile.ts';
import { SYNTH_TIMEOUT_MS, synthProfile, type SynthesizedProfile } from './synth.ts';

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };

let synth: SynthesizedProfile;
let resources: Record<string, Resource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const appFunctions = () =>
  ofType('AWS::Lambda::Function').filter(([, r]) => String(r.Properties.Description ?? '').startsWith('MemorySync'));
const refId = (v: any): string | undefined => v?.Ref ?? v?.['Fn::GetAtt']?.[0];

// A full synth with cdk-nag is CPU-bound: on a busy 2-core machine it can take minutes.
beforeAll(() => {
  synth = synthProfile('standard');
  resources = synth.template.toJSON().Resources;
}, SYNTH_TIMEOUT_MS);

describe('standard profile: cdk-nag AwsSolutions', () => {
  it('has no unsuppressed errors', () => {
    expect(synth.nagErrors).toEqual([]);
  });
  it('has no unsuppressed warnings', () => {
    expect(synth.nagWarnings).toEqual([]);
  });
});

describe('network', () => {
  it('spreads a VPC over two AZs with NAT egress, an S3 gateway endpoint and flow logs', () => {
    synth.template.resourceCountIs('AWS::EC2::NatGateway', 2);
    synth.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])]) }),
    });
    synth.template.hasResourceProperties('AWS::EC2::FlowLog', { LogDestinationType: 'cloud-watch-logs' });
  });
});

describe('storage and keys', () => {
  it('rotates the project key', () => {
    synth.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('blocks public access, encrypts with the project key, versions and expires dead letters', () => {
    const [keyId] = ofType('AWS::KMS::Key')[0];
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } },
          }),
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'dead-letters/', ExpirationInDays: 30, Status: 'Enabled' })]),
      },
    });
  });

  it('denies every request to the buckets that does not use TLS', () => {
    const policies = ofType('AWS::S3::BucketPolicy');
    expect(policies.length).toBe(2);
    for (const [, policy] of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    }
  });
});

describe('data', () => {
  it('runs Aurora PostgreSQL Serverless v2 encrypted with the project key, TLS forced', () => {
    synth.template.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      StorageEncrypted: true,
      KmsKeyId: Match.anyValue(),
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 16 },
      DeletionProtection: true,
      EnableIAMDatabaseAuthentication: true,
    });
    synth.template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: { 'rds.force_ssl': '1' },
    });
    synth.template.resourceCountIs('AWS::RDS::DBInstance', 2);
  });

  it('puts RDS Proxy in front with TLS required, and rotates the credentials', () => {
    synth.template.hasResourceProperties('AWS::RDS::DBProxy', { RequireTLS: true, EngineFamily: 'POSTGRESQL' });
    synth.template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
  });

  it('runs migrations from a deploy trigger after the database exists', () => {
    const triggers = ofType('Custom::Trigger');
    expect(triggers.length).toBe(2);
    const migrate = appFunctions().find(([, r]) => String(r.Properties.Description).includes('migrations'));
    expect(migrate).toBeDefined();
    const trigger = triggers.find(([, r]) => refId(r.Properties.HandlerArn)?.startsWith('MigrateFunctionCurrentVersion'));
    expect(trigger).toBeDefined();
    expect(trigger![1].Properties.ExecuteOnHandlerChange).toBe(true);
    // after the writer instance (not just the cluster) and the proxy are up
    expect(trigger![1].DependsOn?.some((d) => d.startsWith('DataClusterwriter'))).toBe(true);
    expect(trigger![1].DependsOn?.some((d) => d.startsWith('DataClusterProxy'))).toBe(true);
  });
});

describe('search', () => {
  it('is an OpenSearch domain in the VPC with encryption, node-to-node TLS, HTTPS and fine-grained access', () => {
    synth.template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      EncryptionAtRestOptions: { Enabled: true, KmsKeyId: Match.anyValue() },
      NodeToNodeEncryptionOptions: { Enabled: true },
      DomainEndpointOptions: Match.objectLike({ EnforceHTTPS: true }),
      AdvancedSecurityOptions: Match.objectLike({ Enabled: true, InternalUserDatabaseEnabled: false }),
      VPCOptions: Match.objectLike({ SubnetIds: Match.anyValue() }),
      ClusterConfig: Match.objectLike({ ZoneAwarenessEnabled: true, DedicatedMasterEnabled: true }),
    });
  });

  it('maps the app functions to the security plugin role after the domain exists', () => {
    const mapper = appFunctions().find(([, r]) => String(r.Properties.Description).includes('OpenSearch security plugin'));
    expect(mapper).toBeDefined();
    const arns = JSON.stringify(mapper![1].Properties.Environment.Variables.APP_ROLE_ARNS);
    for (const family of ['Api', 'Workersembedding', 'Schedules']) expect(arns).toContain(family);
  });
});

describe('cache', () => {
  it('is Redis with TLS required, at-rest encryption with the project key, Multi-AZ', () => {
    synth.template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      TransitEncryptionEnabled: true,
      TransitEncryptionMode: 'required',
      AtRestEncryptionEnabled: true,
      KmsKeyId: Match.anyValue(),
      MultiAZEnabled: true,
      AutomaticFailoverEnabled: true,
    });
  });
});

describe('queues and workers', () => {
  it('has one queue and one dead-letter queue per task family, all SSE-KMS', () => {
    const queues = ofType('AWS::SQS::Queue');
    // each family twice, plus the Scheduler's dead-letter queue
    expect(queues.length).toBe(TASK_FAMILIES.length * 2 + 1);
    for (const [, q] of queues) expect(q.Properties.KmsMasterKeyId).toBeDefined();
    const withRedrive = queues.filter(([, q]) => q.Properties.RedrivePolicy);
    expect(withRedrive.length).toBe(TASK_FAMILIES.length);
    for (const [, q] of withRedrive) expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(5);
  });

  it('sets each queue visibility timeout to at least six times its worker timeout', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings.length).toBe(TASK_FAMILIES.length);
    for (const [, mapping] of mappings) {
      const queue = resources[refId(mapping.Properties.EventSourceArn)!];
      const fn = resources[refId(mapping.Properties.FunctionName)!];
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(VISIBILITY_FACTOR * fn.Properties.Timeout);
    }
  });

  it('reports partial batch failures from every worker and binds each worker to its own family', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    const families = new Set<string>();
    for (const [, mapping] of mappings) {
      expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(mapping.Properties.ScalingConfig.MaximumConcurrency).toBeGreaterThanOrEqual(2);
      const fn = resources[refId(mapping.Properties.FunctionName)!];
      families.add(fn.Properties.Environment.Variables.TASK_FAMILY);
    }
    expect([...families].sort()).toEqual([...TASK_FAMILIES].sort());
  });

  it('denies queue access without TLS', () => {
    const policies = ofType('AWS::SQS::QueuePolicy');
    expect(policies.length).toBe(TASK_FAMILIES.length * 2 + 1);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });
});

describe('functions', () => {
  it('run Node.js 22 on arm64 with active tracing and Powertools settings', () => {
    const fns = appFunctions();
    expect(fns.length).toBe(TASK_FAMILIES.length + 4);
    for (const [, fn] of fns) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('memorysync');
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
      expect(fn.Properties.VpcConfig).toBeDefined();
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
  });

  it('give the API the settings the app reads on AWS', () => {
    const [, api] = appFunctions().find(([, r]) => String(r.Properties.Description).includes('MemorySync API'))!;
    const env = api.Properties.Environment.Variables;
    expect(env).toMatchObject({
      DATABASE_SSL: 'true',
      DATABASE_PORT: '5432',
      DATABASE_NAME: 'memorysync',
      VECTOR_STORE: 'opensearch',
      OPENSEARCH_NAMESPACE_MODE: 'shared',
      QUEUE: 'sqs',
      OBJECT_STORE: 's3',
      EMBEDDER: 'bedrock',
      BEDROCK_EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
      KEY_RING: 'kms',
      DEV_BOOTSTRAP: 'false',
    });
    for (const name of ['DATABASE_SECRET_ARN', 'DATABASE_HOST', 'REDIS_URL', 'SQS_QUEUE_URLS', 'S3_BUCKET', 'KMS_KEY_ID', 'JWT_SECRET_ARN', 'OPENSEARCH_ENDPOINT']) {
      expect(env[name], name).toBeDefined();
    }
    expect(JSON.stringify(env.REDIS_URL)).toContain('rediss://');
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.SQS_ENDPOINT).toBeUndefined();
  });

  it('scopes every app role statement to named resources (only X-Ray on "*")', () => {
    const appRoles = new Set(appFunctions().map(([, fn]) => refId(fn.Properties.Role)));
    const policies = ofType('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: any) => appRoles.has(refId(r))));
    expect(policies.length).toBeGreaterThan(0);
    for (const [, policy] of policies) {
      for (const st of policy.Properties.PolicyDocument.Statement) {
        const actions = [st.Action].flat();
        if (st.Resource === '*') expect(actions.every((a: string) => a.startsWith('xray:'))).toBe(true);
        for (const a of actions) expect(a.endsWith('*') && !a.startsWith('es:'), a).toBe(false);
      }
    }
  });

  it('lets the API invoke only the Titan v2 embedding model and send only to the task queues', () => {
    const [, api] = appFunctions().find(([, r]) => String(r.Properties.Description).includes('MemorySync API'))!;
    const policy = ofType('AWS::IAM::Policy').find(([, p]) => p.Properties.Roles.some((r: any) => refId(r) === refId(api.Properties.Role)))!;
    const statements = policy[1].Properties.PolicyDocument.Statement as any[];
    const bedrock = statements.find((s) => [s.Action].flat().includes('bedrock:InvokeModel'));
    expect(JSON.stringify(bedrock.Resource)).toContain('foundation-model/amazon.titan-embed-text-v2:0');
    const send = statements.find((s) => [s.Action].flat().includes('sqs:SendMessage'));
    expect(send.Resource).toHaveLength(TASK_FAMILIES.length);
    const kms = statements.find((s) => [s.Action].flat().includes('kms:GenerateDataKey'));
    expect(kms.Resource).toEqual({ 'Fn::GetAtt': [ofType('AWS::KMS::Key')[0][0], 'Arn'] });
  });
});

describe('dead-letter tooling', () => {
  const dlqArns = () => ofType('AWS::SQS::Queue')
    .filter(([id]) => Object.values(resources).some((q) => q.Type === 'AWS::SQS::Queue' && q.Properties.RedrivePolicy?.deadLetterTargetArn?.['Fn::GetAtt']?.[0] === id))
    .map(([id]) => id);
  const statementsOf = (fn: Resource) => ofType('AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: any) => refId(r) === refId(fn.Properties.Role)))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);

  it('lets only the API function receive from and delete in the dead-letter queues, exactly those', () => {
    const dlqs = dlqArns();
    expect(dlqs).toHaveLength(TASK_FAMILIES.length);
    const readers: string[] = [];
    for (const [id, fn] of appFunctions()) {
      for (const st of statementsOf(fn)) {
        const resourceIds = [st.Resource].flat().map(refId);
        if (!resourceIds.some((r) => r && dlqs.includes(r))) continue;
        readers.push(id);
        expect([st.Action].flat().sort()).toEqual(['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage']);
        expect(resourceIds.sort()).toEqual([...dlqs].sort());
      }
    }
    const [apiId, api] = appFunctions().find(([, r]) => String(r.Properties.Description).includes('MemorySync API'))!;
    expect(readers).toEqual([apiId]);
    const dlqUrls = api.Properties.Environment.Variables.SQS_DLQ_URLS;
    expect(JSON.stringify(dlqUrls)).toContain(dlqs[0]);
    for (const [id, fn] of appFunctions()) if (id !== apiId) expect(fn.Properties.Environment.Variables.SQS_DLQ_URLS, id).toBeUndefined();
  });
});

describe('api', () => {
  it('is a REST API proxying / and /{proxy+} to the API Lambda, without a request validator', () => {
    synth.template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    synth.template.resourceCountIs('AWS::ApiGateway::RequestValidator', 0);
    synth.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
    const methods = ofType('AWS::ApiGateway::Method');
    expect(methods.length).toBe(2);
    for (const [, m] of methods) {
      expect(m.Properties.HttpMethod).toBe('ANY');
      expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
    }
  });

  it('throttles, writes access logs and traces the stage', () => {
    synth.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: Match.arrayWith([
        Match.objectLike({ ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400, MetricsEnabled: true }),
      ]),
    });
  });

  it('outputs the API URL and how to create the first API key', () => {
    const outputs = synth.template.toJSON().Outputs;
    expect(outputs.ApiUrl).toBeDefined();
    expect(outputs.FirstApiKey.Value).toContain('org/api-keys');
  });
});

describe('schedules', () => {
  it('gives the schedule function a reserved concurrency of 1', () => {
    const [, fn] = appFunctions().find(([, r]) => String(r.Properties.Description).includes('scheduled jobs'))!;
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(1);
    synth.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 300,
    });
  });

  it('creates one Scheduler schedule per job, flexible window off, with its job input and a retry policy', () => {
    const schedules = ofType('AWS::Scheduler::Schedule');
    expect(schedules.length).toBe(SCHEDULED_JOBS.length);
    const jobs = schedules.map(([, s]) => {
      expect(s.Properties.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
      expect(s.Properties.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 });
      expect(s.Properties.Target.DeadLetterConfig).toBeDefined();
      expect(s.Properties.KmsKeyArn).toBeDefined();
      return JSON.parse(s.Properties.Target.Input).job;
    });
    expect(jobs.sort()).toEqual(SCHEDULED_JOBS.map((j) => j.job).sort());
    const rates = Object.fromEntries(schedules.map(([, s]) => [JSON.parse(s.Properties.Target.Input).job, s.Properties.ScheduleExpression]));
    expect(rates['outbox-sweep']).toBe('rate(1 minute)');
    expect(rates['integration-poll']).toBe('rate(15 minutes)');
    expect(rates.backup).toBe('rate(1 day)');
    synth.template.resourceCountIs('AWS::Events::Rule', 0);
  });
});

describe('observability', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);

  it('alarms on the API 5xx rate and p99 latency', () => {
    const rate = alarms().find((a) => JSON.stringify(a.Metrics ?? []).includes('100 * errors / requests'));
    expect(rate).toBeDefined();
    expect(rate!.Threshold).toBe(1);
    const p99 = alarms().find((a) => a.ExtendedStatistic === 'p99' && a.MetricName === 'Latency');
    expect(p99).toBeDefined();
  });

  it('alarms when any dead-letter queue holds a message', () => {
    const dlq = alarms().filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(dlq.length).toBe(TASK_FAMILIES.length + 1);
    for (const a of dlq) {
      expect(a.Threshold).toBe(0);
      expect(a.ComparisonOperator).toBe('GreaterThanThreshold');
    }
  });

  it('alarms on throttles of the API and workers, and on OpenSearch red', () => {
    expect(alarms().filter((a) => a.MetricName === 'Throttles').length).toBe(TASK_FAMILIES.length + 1);
    expect(alarms().some((a) => a.MetricName === 'ClusterStatus.red' && a.Namespace === 'AWS/ES')).toBe(true);
  });

  it('sends every alarm to one KMS-encrypted SNS topic', () => {
    const [[topicId, topic]] = ofType('AWS::SNS::Topic');
    expect(topic.Properties.KmsMasterKeyId).toBeDefined();
    for (const a of alarms()) expect(a.AlarmActions).toEqual([{ Ref: topicId }]);
  });

  it('draws one dashboard with API, queue, worker, Aurora and OpenSearch widgets', () => {
    const dashboards = ofType('AWS::CloudWatch::Dashboard');
    expect(dashboards.length).toBe(1);
    const body = JSON.stringify(dashboards[0][1].Properties.DashboardBody);
    for (const text of ['API requests', 'API 4xx / 5xx', 'p50', 'p99', 'Queue depth', 'Oldest message age', 'Dead-letter queue depth', 'Worker errors', 'Lambda throttles', 'ServerlessDatabaseCapacity', 'ClusterStatus.red']) {
      expect(body, text).toContain(text);
    }
  });
});
