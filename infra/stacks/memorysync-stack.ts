import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as triggers from 'aws-cdk-lib/triggers';
import type { Construct } from 'constructs';
import { TASK_FAMILIES } from '../../shared/ports/queue.ts';
import { LAMBDA_ENTRIES } from '../bundling.ts';
import { Api } from '../constructs/api.ts';
import {
  bindCache,
  bindDatabase,
  bindDatabaseUrl,
  bindDeadLetterQueues,
  bindEmbedder,
  bindJwtSecret,
  bindKeyRing,
  bindObjectStore,
  bindQueues,
  bindVectorStore,
} from '../constructs/bindings.ts';
import { Cache } from '../constructs/cache.ts';
import { Data } from '../constructs/data.ts';
import { MemorySyncFunction, type FunctionPlacement } from '../constructs/memorysync-function.ts';
import { Network } from '../constructs/network.ts';
import { Observability } from '../constructs/observability.ts';
import { Queues } from '../constructs/queues.ts';
import { Schedules } from '../constructs/schedules.ts';
import { Search } from '../constructs/search.ts';
import { StorageAndKeys } from '../constructs/storage.ts';
import { Workers } from '../constructs/workers.ts';
import { scheduledJobs, WORKER_TIMEOUT, type ProfileSettings } from '../profile.ts';
import { applyNagSuppressions } from './nag-suppressions.ts';

/** How functions reach the compose containers in the LocalStack profile (same docker network). */
export const LOCALSTACK_SERVICES = {
  databaseUrl: 'postgres://memorysync:memorysync@postgres:5432/memorysync',
  redisUrl: 'redis://redis:6379',
  awsEndpoint: 'http://localstack:4566',
} as const;

export interface MemorySyncStackProps extends StackProps {
  settings: ProfileSettings;
  deletionProtection?: boolean;
  namespaceMode?: 'index-per-user' | 'shared';
  alarmEmail?: string;
}

/** The whole deployment for one profile: stores, queues, functions, API, schedules, observability. */
export class MemorySyncStack extends Stack {
  readonly api: Api;
  readonly storage: StorageAndKeys;
  readonly queues: Queues;
  readonly network?: Network;
  readonly data?: Data;
  readonly search?: Search;
  readonly cache?: Cache;

  constructor(scope: Construct, id: string, props: MemorySyncStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const ephemeral = !settings.aws || props.deletionProtection === false;
    this.storage = new StorageAndKeys(this, 'Storage', { ephemeral });
    const key = this.storage.key;

    let placement: FunctionPlacement = { key };
    if (settings.aws) {
      this.network = new Network(this, 'Network', { natGateways: settings.natGateways, key });
      placement = { key, vpc: this.network.vpc, securityGroups: [this.network.appSecurityGroup] };
      this.data = new Data(this, 'Data', {
        vpc: this.network.vpc,
        key,
        minAcu: settings.auroraMinAcu,
        maxAcu: settings.auroraMaxAcu,
        rdsProxy: settings.rdsProxy,
        readerInstance: settings.readerInstance,
        deletionProtection: props.deletionProtection ?? true,
      });
      this.data.allowFrom(this.network.appSecurityGroup);
      this.cache = new Cache(this, 'Cache', {
        vpc: this.network.vpc,
        key,
        appSecurityGroup: this.network.appSecurityGroup,
        nodeType: settings.cacheNodeType,
        nodes: settings.cacheNodes,
      });
      if (settings.search) {
        this.search = new Search(this, 'Search', {
          vpc: this.network.vpc,
          key,
          appSecurityGroup: this.network.appSecurityGroup,
          ...settings.search,
          ephemeral,
        });
      }
    }

    this.queues = new Queues(this, 'Queues', {
      key,
      families: TASK_FAMILIES,
      workerTimeout: (family) => WORKER_TIMEOUT[family] ?? Duration.seconds(60),
    });
    const jwtSecret = new secretsmanager.Secret(this, 'JwtSecret', {
      description: 'MemorySync HS256 signing secret for access tokens',
      encryptionKey: key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });

    this.api = new Api(this, 'Api', { placement, reservedConcurrency: settings.apiReservedConcurrency });
    const workers = new Workers(this, 'Workers', {
      placement,
      queues: this.queues,
      maxConcurrency: settings.workerMaxConcurrency,
    });
    const schedules = new Schedules(this, 'Schedules', { placement, jobs: scheduledJobs(settings), driver: settings.scheduler });
    const migrate = new MemorySyncFunction(this, 'Migrate', {
      ...placement,
      entry: LAMBDA_ENTRIES.migrate,
      description: 'MemorySync database migrations (run by a deploy trigger)',
      timeout: Duration.minutes(10),
      memorySize: 512,
    });

    const localEndpoint = settings.aws ? undefined : LOCALSTACK_SERVICES.awsEndpoint;
    const bindDb = (fn: MemorySyncFunction) =>
      this.data ? bindDatabase(fn, this.data) : bindDatabaseUrl(fn, LOCALSTACK_SERVICES.databaseUrl);
    // Every function builds the same app (shared/app.ts) at cold start, migrate included: it opens the
    // vector store and embedder too, so it must see exactly the configuration the others see.
    const appFunctions = [this.api.handler, ...workers.all(), schedules.handler, migrate];
    for (const fn of appFunctions) {
      bindDb(fn);
      bindQueues(fn, this.queues, key, localEndpoint);
      bindObjectStore(fn, this.storage.bucket, key, localEndpoint);
      bindKeyRing(fn, key);
      bindVectorStore(fn, this.search, props.namespaceMode ?? 'shared');
      bindCache(fn, this.cache?.url ?? LOCALSTACK_SERVICES.redisUrl);
      bindEmbedder(fn, settings.embedder);
      bindJwtSecret(fn, jwtSecret);
    }

    // Only the API serves the operator's dead-letter routes: only it may read and delete from the DLQs.
    bindDeadLetterQueues(this.api.handler, this.queues);

    // Migrations run on every deploy that changes the migrate bundle (new migrations ship in it).
    new triggers.Trigger(this, 'RunMigrations', {
      handler: migrate.function,
      executeAfter: this.data ? [this.data] : [],
      executeOnHandlerChange: true,
      timeout: Duration.minutes(10),
    });

    new Observability(this, 'Observability', {
      key,
      restApi: this.api.restApi,
      apiFunction: this.api.handler.function,
      workers: [...workers.byFamily].map(([family, fn]) => ({ family, fn: fn.function })),
      scheduleFunction: schedules.handler.function,
      queues: this.queues.all(),
      extraDeadLetterQueues: schedules.deadLetterQueue ? [{ name: 'scheduler', queue: schedules.deadLetterQueue }] : [],
      cluster: this.data?.cluster,
      domain: this.search?.domain,
      alarmEmail: props.alarmEmail,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.restApi.url, description: 'MemorySync API base URL' });
    new CfnOutput(this, 'ApiId', { value: this.api.restApi.restApiId, description: 'REST API id (LocalStack URLs use it)' });
    new CfnOutput(this, 'ApiStage', { value: this.api.stageName });
    new CfnOutput(this, 'FirstApiKey', {
      description: 'How to create the first API key',
      value:
        'POST <ApiUrl>auth/signup {"email","password","organization_name"} -> tokens.access_token; then ' +
        'POST <ApiUrl>org/api-keys {"name":"first"} with "Authorization: Bearer <access_token>" -> key ms_live_... ' +
        '(shown once). localstack/smoke.sh does exactly this; see docs/deploy.md',
    });
    new CfnOutput(this, 'ObjectBucket', { value: this.storage.bucket.bucketName });

    applyNagSuppressions(this);
  }
}
