import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import type * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Construct } from 'constructs';

export interface ObservabilityProps {
  key: kms.IKey;
  restApi: apigw.RestApi;
  apiFunction: lambda.IFunction;
  workers: ReadonlyArray<{ family: string; fn: lambda.IFunction }>;
  scheduleFunction: lambda.IFunction;
  queues: ReadonlyArray<{ family: string; queue: sqs.IQueue; deadLetterQueue: sqs.IQueue }>;
  /** further DLQs to alarm on (e.g. the scheduler's) */
  extraDeadLetterQueues?: ReadonlyArray<{ name: string; queue: sqs.IQueue }>;
  cluster?: rds.DatabaseCluster;
  domain?: opensearch.Domain;
  alarmEmail?: string;
  /** thresholds that page */
  serverErrorRatePercent?: number;
  p99LatencyMs?: number;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * One dashboard an operator opens first, and the alarms that page: API 5xx rate and p99 latency,
 * anything in a dead-letter queue, Lambda throttles, OpenSearch red. Alarms go to one SNS topic
 * encrypted with the project key.
 */
export class Observability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: 'MemorySync alarms',
      masterKey: props.key,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    /** An alarm that pages: above `threshold` (or at it, with `orEqual`), missing data is fine. */
    const page = (
      id: string,
      description: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      options: { periods?: number; datapoints?: number; orEqual?: boolean } = {},
    ) => {
      const alarm = new cloudwatch.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator: options.orEqual
          ? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
          : cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: options.periods ?? 1,
        datapointsToAlarm: options.datapoints,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new cwActions.SnsAction(this.topic));
      alarm.addOkAction(new cwActions.SnsAction(this.topic));
      this.alarms.push(alarm);
    };

    const api = props.restApi;
    const requests = api.metricCount({ period: FIVE_MINUTES, statistic: 'Sum' });
    const errors4xx = api.metricClientError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const errors5xx = api.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const p50 = api.metricLatency({ period: FIVE_MINUTES, statistic: 'p50' });
    const p99 = api.metricLatency({ period: FIVE_MINUTES, statistic: 'p99' });
    const errorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: errors5xx },
      label: '5xx rate (%)',
      period: FIVE_MINUTES,
    });

    page('Api5xxRate', 'API 5xx responses above the threshold share of requests', errorRate, props.serverErrorRatePercent ?? 1, {
      periods: 3,
      datapoints: 2,
    });
    page('ApiP99Latency', 'API p99 latency high for 15 minutes', p99, props.p99LatencyMs ?? 3000, { periods: 3 });
    const deadLetterQueues = [
      ...props.queues.map(({ family, deadLetterQueue }) => ({ name: family, queue: deadLetterQueue })),
      ...(props.extraDeadLetterQueues ?? []),
    ];
    for (const { name, queue } of deadLetterQueues) {
      const depth = queue.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: 'Maximum' });
      page(`DeadLetters-${name}`, `Messages parked in the ${name} dead-letter queue`, depth, 0);
    }
    // The schedule function is left out: reserved concurrency 1 throttles overlapping runs by design.
    const throttled = [{ name: 'api', fn: props.apiFunction }, ...props.workers.map((w) => ({ name: w.family, fn: w.fn }))];
    for (const { name, fn } of throttled) {
      page(`Throttles-${name}`, `Lambda throttles on the ${name} function`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), 0);
    }
    if (props.domain) {
      const red = props.domain.metricClusterStatusRed({ period: Duration.minutes(1), statistic: 'Maximum' });
      page('SearchClusterRed', 'OpenSearch cluster status red: at least one primary shard unassigned', red, 1, { orEqual: true });
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
      new cloudwatch.GraphWidget({ title, left, width, height: 6 });
    const allFunctions = [
      { name: 'api', fn: props.apiFunction },
      ...props.workers.map((w) => ({ name: w.family, fn: w.fn })),
      { name: 'schedule', fn: props.scheduleFunction },
    ];
    this.dashboard.addWidgets(
      graph('API requests', [requests]),
      graph('API 4xx / 5xx', [errors4xx, errors5xx]),
      graph('API latency p50 / p99 (ms)', [p50, p99]),
    );
    this.dashboard.addWidgets(
      graph(
        'Queue depth',
        props.queues.map(({ family, queue }) =>
          queue.metricApproximateNumberOfMessagesVisible({ label: family, period: FIVE_MINUTES, statistic: 'Maximum' }),
        ),
      ),
      graph(
        'Oldest message age (s)',
        props.queues.map(({ family, queue }) =>
          queue.metricApproximateAgeOfOldestMessage({ label: family, period: FIVE_MINUTES, statistic: 'Maximum' }),
        ),
      ),
      graph(
        'Dead-letter queue depth',
        deadLetterQueues.map(({ name, queue }) =>
          queue.metricApproximateNumberOfMessagesVisible({ label: name, period: FIVE_MINUTES, statistic: 'Maximum' }),
        ),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Worker errors',
        props.workers.map(({ family, fn }) => fn.metricErrors({ label: family, period: FIVE_MINUTES, statistic: 'Sum' })),
      ),
      graph(
        'Lambda throttles',
        allFunctions.map(({ name, fn }) => fn.metricThrottles({ label: name, period: FIVE_MINUTES, statistic: 'Sum' })),
      ),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 8, height: 6 }),
    );
    const dataWidgets: cloudwatch.IWidget[] = [];
    if (props.cluster) {
      dataWidgets.push(
        graph('Aurora capacity (ACU)', [
          props.cluster.metricServerlessDatabaseCapacity({ period: FIVE_MINUTES, statistic: 'Maximum' }),
          props.cluster.metricACUUtilization({ period: FIVE_MINUTES, statistic: 'Maximum' }),
        ]),
        graph('Aurora connections', [props.cluster.metricDatabaseConnections({ period: FIVE_MINUTES, statistic: 'Maximum' })]),
      );
    }
    if (props.domain) {
      const d = props.domain;
      dataWidgets.push(
        graph('OpenSearch health (1 = status)', [
          d.metric('ClusterStatus.green', { period: Duration.minutes(1), statistic: 'Maximum' }),
          d.metricClusterStatusYellow({ period: Duration.minutes(1) }),
          d.metricClusterStatusRed({ period: Duration.minutes(1) }),
        ]),
        graph('OpenSearch JVM pressure / free storage', [d.metricJVMMemoryPressure(), d.metricFreeStorageSpace()]),
      );
    }
    if (dataWidgets.length) this.dashboard.addWidgets(...dataWidgets);
  }
}
