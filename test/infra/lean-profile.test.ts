import { beforeAll, describe, expect, it } from 'vitest';
import { SYNTH_TIMEOUT_MS, synthProfile, type SynthesizedProfile } from './synth.ts';

let synth: SynthesizedProfile;
let resources: Record<string, { Type: string; Properties: Record<string, any> }>;
const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
const apiFunction = () =>
  ofType('AWS::Lambda::Function').find((r) => String(r.Properties.Description).startsWith('MemorySync API'))!;

// A full synth with cdk-nag is CPU-bound: on a busy 2-core machine it can take minutes.
beforeAll(() => {
  synth = synthProfile('lean');
  resources = synth.template.toJSON().Resources;
}, SYNTH_TIMEOUT_MS);

describe('lean profile', () => {
  it('passes cdk-nag AwsSolutions with no unsuppressed errors or warnings', () => {
    expect(synth.nagErrors).toEqual([]);
    expect(synth.nagWarnings).toEqual([]);
  });

  it('lets an operator drop deletion protection for teardown, still passing cdk-nag', () => {
    const throwaway = synthProfile('lean', { 'memorysync:deletionProtection': 'false' });
    expect(throwaway.nagErrors).toEqual([]);
    const [cluster] = Object.values<any>(throwaway.template.toJSON().Resources).filter((r) => r.Type === 'AWS::RDS::DBCluster');
    expect(cluster.Properties.DeletionProtection).toBe(false);
    for (const bucket of Object.values<any>(throwaway.template.toJSON().Resources).filter((r) => r.Type === 'AWS::S3::Bucket')) {
      expect(bucket.DeletionPolicy).toBe('Delete');
    }
  }, SYNTH_TIMEOUT_MS);

  it('lets Aurora Serverless v2 scale to 0 ACU and pause when idle', () => {
    const [cluster] = ofType('AWS::RDS::DBCluster');
    expect(cluster.Properties.ServerlessV2ScalingConfiguration).toMatchObject({ MinCapacity: 0, SecondsUntilAutoPause: 300 });
    expect(ofType('AWS::RDS::DBInstance')).toHaveLength(1);
  });

  it('has no OpenSearch domain and no RDS Proxy, and keeps vectors in pgvector', () => {
    expect(ofType('AWS::OpenSearchService::Domain')).toHaveLength(0);
    expect(ofType('AWS::RDS::DBProxy')).toHaveLength(0);
    const env = apiFunction().Properties.Environment.Variables;
    expect(env.VECTOR_STORE).toBe('pgvector');
    expect(env.OPENSEARCH_ENDPOINT).toBeUndefined();
    // straight to the cluster's non-default port, since there is no proxy
    expect(env.DATABASE_PORT).toBe('5433');
  });

  it('bounds API concurrency, since without a proxy it bounds database connections', () => {
    expect(apiFunction().Properties.ReservedConcurrentExecutions).toBe(40);
  });

  it('runs one NAT gateway and a single-node cache', () => {
    expect(ofType('AWS::EC2::NatGateway')).toHaveLength(1);
    const [redis] = ofType('AWS::ElastiCache::ReplicationGroup');
    expect(redis.Properties).toMatchObject({ NumCacheClusters: 1, TransitEncryptionEnabled: true, AtRestEncryptionEnabled: true });
  });

  it('runs the database sweeps every 15 minutes, not every minute, so an idle cluster can pause', () => {
    const rates = Object.fromEntries(
      ofType('AWS::Scheduler::Schedule').map((s) => [JSON.parse(s.Properties.Target.Input).job, s.Properties.ScheduleExpression]),
    );
    expect(rates['outbox-sweep']).toBe('rate(15 minutes)');
    expect(rates['webhook-retry-sweep']).toBe('rate(15 minutes)');
    expect(rates['integration-poll']).toBe('rate(1 hour)');
    expect(rates.retention).toBe('rate(1 hour)');
    expect(Object.values(rates).some((r) => r === 'rate(1 minute)')).toBe(false);
  });

  it('has no OpenSearch alarm but keeps the other paging alarms', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map((a) => a.Properties);
    expect(alarms.some((a) => a.MetricName === 'ClusterStatus.red')).toBe(false);
    expect(alarms.some((a) => a.ExtendedStatistic === 'p99')).toBe(true);
  });
});
