import { Duration } from 'aws-cdk-lib';

/** The deployment shapes one CDK app can take, selected by `-c profile=…`. */
export const PROFILES = ['standard', 'lean', 'localstack'] as const;
export type ProfileName = (typeof PROFILES)[number];

/** Context keys read by the app; tests set them on `new App({ context })`. */
export const CONTEXT = {
  profile: 'profile',
  /** true = Lambda code is a tiny inline stub, so template tests need neither the entries nor esbuild */
  skipBundling: 'memorysync:skipBundling',
  /** off only for throw-away stacks; the database keeps deletion protection otherwise */
  deletionProtection: 'memorysync:deletionProtection',
  alarmEmail: 'memorysync:alarmEmail',
} as const;

/**
 * Everything that differs between profiles, in one table, so constructs read a setting instead of
 * branching on the profile name.
 */
export interface ProfileSettings {
  name: ProfileName;
  /** false on LocalStack: no VPC, RDS or ElastiCache there; the compose containers stand in */
  aws: boolean;
  vectorStore: 'opensearch' | 'pgvector';
  natGateways: number;
  /** Aurora Serverless v2 capacity range (ACU); 0 = auto-pause when idle */
  auroraMinAcu: number;
  auroraMaxAcu: number;
  /**
   * RDS Proxy pools Lambda connections, but it holds connections open (so Aurora never auto-pauses) and
   * bills a minimum of 8 ACU-hours per hour; lean connects to the cluster directly instead.
   */
  rdsProxy: boolean;
  readerInstance: boolean;
  cacheNodeType: string;
  cacheNodes: number;
  search?: { dataNodeType: string; dataNodes: number; masterNodeType: string; masterNodes: number; volumeGb: number };
  /** EventBridge Scheduler, or EventBridge rules where Scheduler does not fire (LocalStack) */
  scheduler: 'scheduler' | 'rules';
  apiReservedConcurrency?: number;
  /** ceiling on concurrent worker invocations per queue (SQS event source maximum concurrency) */
  workerMaxConcurrency: number;
  embedder: 'bedrock' | 'local';
  /**
   * Job frequencies that differ from {@link SCHEDULED_JOBS}. Lean slows the one-minute sweeps: every run
   * opens a database connection, and Aurora only pauses after 5 idle minutes (the after-commit relay is
   * the normal path; the sweeps only catch failures).
   */
  jobFrequencies?: Readonly<Record<string, Duration>>;
}

const standard: ProfileSettings = {
  name: 'standard',
  aws: true,
  vectorStore: 'opensearch',
  natGateways: 2,
  auroraMinAcu: 0.5,
  auroraMaxAcu: 16,
  rdsProxy: true,
  readerInstance: true,
  cacheNodeType: 'cache.t4g.small',
  cacheNodes: 2,
  search: {
    dataNodeType: 'r6g.large.search',
    dataNodes: 2,
    masterNodeType: 'm6g.large.search',
    masterNodes: 3,
    volumeGb: 100,
  },
  scheduler: 'scheduler',
  workerMaxConcurrency: 20,
  embedder: 'bedrock',
};

const lean: ProfileSettings = {
  ...standard,
  name: 'lean',
  vectorStore: 'pgvector',
  natGateways: 1,
  auroraMinAcu: 0,
  auroraMaxAcu: 4,
  rdsProxy: false,
  readerInstance: false,
  cacheNodeType: 'cache.t4g.micro',
  cacheNodes: 1,
  search: undefined,
  // without a proxy, Lambda concurrency is what bounds database connections
  apiReservedConcurrency: 40,
  workerMaxConcurrency: 5,
  jobFrequencies: {
    'outbox-sweep': Duration.minutes(15),
    'webhook-retry-sweep': Duration.minutes(15),
    'siem-forward': Duration.minutes(15),
    'integration-poll': Duration.hours(1),
  },
};

const localstack: ProfileSettings = {
  ...lean,
  name: 'localstack',
  aws: false,
  natGateways: 0,
  apiReservedConcurrency: undefined,
  scheduler: 'rules',
  embedder: 'local',
  jobFrequencies: undefined,
};

const table: Record<ProfileName, ProfileSettings> = { standard, lean, localstack };

/** Settings for a profile name from context; throws on an unknown name rather than guessing. */
export function profileSettings(name: unknown = 'standard'): ProfileSettings {
  const key = String(name ?? 'standard');
  if (!(PROFILES as readonly string[]).includes(key)) {
    throw new Error(`Unknown profile "${key}": use one of ${PROFILES.join(', ')} (cdk -c profile=…)`);
  }
  return table[key as ProfileName];
}

/** Worker timeouts per task family; queue visibility is 6× this (the AWS guidance for SQS event sources). */
export const WORKER_TIMEOUT: Record<string, Duration> = {
  embedding: Duration.seconds(120),
  summarization: Duration.seconds(120),
  intelligence: Duration.seconds(300),
  'integration-sync': Duration.seconds(300),
  'webhook-delivery': Duration.seconds(60),
  'siem-forwarding': Duration.seconds(60),
  retention: Duration.seconds(300),
};

/** The schedule handler's jobs and how often each runs by default. */
export const SCHEDULED_JOBS: ReadonlyArray<{ job: string; every: Duration }> = [
  { job: 'retention', every: Duration.hours(1) },
  { job: 'intelligence', every: Duration.days(1) },
  { job: 'outbox-sweep', every: Duration.minutes(1) },
  { job: 'integration-poll', every: Duration.minutes(15) },
  { job: 'webhook-retry-sweep', every: Duration.minutes(1) },
  { job: 'backup', every: Duration.days(1) },
  { job: 'outbox-prune', every: Duration.days(1) },
  { job: 'siem-forward', every: Duration.minutes(1) },
];

/** The jobs with a profile's own frequencies applied. */
export function scheduledJobs(settings: ProfileSettings): ReadonlyArray<{ job: string; every: Duration }> {
  return SCHEDULED_JOBS.map(({ job, every }) => ({ job, every: settings.jobFrequencies?.[job] ?? every }));
}
