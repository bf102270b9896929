import { beforeAll, describe, expect, it } from 'vitest';
import { profileSettings, SCHEDULED_JOBS } from '../../infra/profile.ts';
import { LOCALSTACK_SERVICES } from '../../infra/stacks/memorysync-stack.ts';
import { SYNTH_TIMEOUT_MS, synthProfile, type SynthesizedProfile } from './synth.ts';

let synth: SynthesizedProfile;
let resources: Record<string, { Type: string; Properties: Record<string, any>; DeletionPolicy?: string }>;
const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
const appFunctions = () =>
  ofType('AWS::Lambda::Function').filter((r) => String(r.Properties.Description ?? '').startsWith('MemorySync'));

// A full synth with cdk-nag is CPU-bound: on a busy 2-core machine it can take minutes.
beforeAll(() => {
  synth = synthProfile('localstack');
  resources = synth.template.toJSON().Resources;
}, SYNTH_TIMEOUT_MS);

describe('localstack profile', () => {
  it('passes cdk-nag AwsSolutions with no unsuppressed errors or warnings', () => {
    expect(synth.nagErrors).toEqual([]);
    expect(synth.nagWarnings).toEqual([]);
  });

  it('creates nothing LocalStack community cannot run: no VPC, RDS, ElastiCache, OpenSearch or Scheduler', () => {
    for (const type of [
      'AWS::EC2::VPC',
      'AWS::RDS::DBCluster',
      'AWS::RDS::DBProxy',
      'AWS::ElastiCache::ReplicationGroup',
      'AWS::OpenSearchService::Domain',
      'AWS::Scheduler::Schedule',
      'AWS::ApiGatewayV2::Api',
    ]) {
      expect(ofType(type), type).toHaveLength(0);
    }
    for (const fn of appFunctions()) expect(fn.Properties.VpcConfig).toBeUndefined();
  });

  it('drives the schedule handler with EventBridge rules carrying each job name', () => {
    const rules = ofType('AWS::Events::Rule');
    expect(rules).toHaveLength(SCHEDULED_JOBS.length);
    const jobs = rules.map((r) => {
      expect(r.Properties.ScheduleExpression).toMatch(/^rate\(/);
      return JSON.parse(r.Properties.Targets[0].Input).job;
    });
    expect(jobs.sort()).toEqual(SCHEDULED_JOBS.map((j) => j.job).sort());
  });

  it('points the functions at the compose PostgreSQL and Redis and at LocalStack for SQS, S3 and KMS', () => {
    for (const fn of appFunctions().filter((f) => !String(f.Properties.Description).includes('role mapping'))) {
      const env = fn.Properties.Environment.Variables;
      expect(env).toMatchObject({
        DATABASE_URL: LOCALSTACK_SERVICES.databaseUrl,
        DATABASE_SSL: 'false',
        REDIS_URL: LOCALSTACK_SERVICES.redisUrl,
        SQS_ENDPOINT: LOCALSTACK_SERVICES.awsEndpoint,
        S3_ENDPOINT: LOCALSTACK_SERVICES.awsEndpoint,
        VECTOR_STORE: 'pgvector',
        EMBEDDER: 'local',
        KEY_RING: 'kms',
        QUEUE: 'sqs',
        OBJECT_STORE: 's3',
      });
      expect(env.DATABASE_SECRET_ARN).toBeUndefined();
    }
  });

  it('keeps a REST API (v1), the queues with DLQs and the alarms', () => {
    expect(ofType('AWS::ApiGateway::RestApi')).toHaveLength(1);
    expect(ofType('AWS::Lambda::EventSourceMapping').length).toBeGreaterThan(0);
    expect(ofType('AWS::CloudWatch::Alarm').length).toBeGreaterThan(0);
  });

  it('lets the throw-away bucket be deleted with the stack', () => {
    const buckets = ofType('AWS::S3::Bucket');
    for (const b of buckets) expect(b.DeletionPolicy).toBe('Delete');
  });
});

describe('profile selection', () => {
  it('rejects an unknown profile name instead of guessing', () => {
    expect(() => profileSettings('prod')).toThrow(/Unknown profile "prod"/);
  });

  it('defaults to the standard profile', () => {
    expect(profileSettings(undefined).name).toBe('standard');
  });
});
