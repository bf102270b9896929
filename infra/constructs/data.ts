import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface DataProps {
  vpc: ec2.IVpc;
  key: kms.IKey;
  minAcu: number;
  maxAcu: number;
  rdsProxy: boolean;
  readerInstance: boolean;
  deletionProtection: boolean;
}

/** Database name and the non-default cluster port (the proxy always listens on 5432). */
export const DATABASE_NAME = 'memorysync';
export const CLUSTER_PORT = 5433;
const PROXY_PORT = 5432;

/**
 * The source of truth: Aurora PostgreSQL Serverless v2 (16.x: pgvector, and 0-ACU auto-pause),
 * TLS-only, encrypted with the project key, credentials in Secrets Manager rotated every 30 days,
 * and optionally RDS Proxy in front so many Lambda sandboxes share few connections.
 */
export class Data extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly proxy?: rds.DatabaseProxy;
  /** where functions connect: the proxy endpoint, or the cluster writer */
  readonly host: string;
  readonly port: number;
  readonly databaseName = DATABASE_NAME;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const engine = rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_6 });
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
      credentials: rds.Credentials.fromGeneratedSecret('memorysync_admin', { encryptionKey: props.key }),
      defaultDatabaseName: DATABASE_NAME,
      port: CLUSTER_PORT,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      writer: rds.ClusterInstance.serverlessV2('writer', { autoMinorVersionUpgrade: true }),
      readers: props.readerInstance
        ? [rds.ClusterInstance.serverlessV2('reader', { scaleWithWriter: true, autoMinorVersionUpgrade: true })]
        : [],
      serverlessV2MinCapacity: props.minAcu,
      serverlessV2MaxCapacity: props.maxAcu,
      serverlessV2AutoPauseDuration: props.minAcu === 0 ? Duration.minutes(5) : undefined,
      storageEncrypted: true,
      storageEncryptionKey: props.key,
      iamAuthentication: true,
      deletionProtection: props.deletionProtection,
      removalPolicy: props.deletionProtection ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      backup: { retention: Duration.days(7) },
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: logs.RetentionDays.ONE_MONTH,
      parameterGroup: new rds.ParameterGroup(this, 'Parameters', {
        engine,
        parameters: { 'rds.force_ssl': '1' },
      }),
    });
    this.secret = this.cluster.secret!;
    this.cluster.addRotationSingleUser({ automaticallyAfter: Duration.days(30) });

    if (props.rdsProxy) {
      this.proxy = this.cluster.addProxy('Proxy', {
        secrets: [this.secret],
        vpc: props.vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        requireTLS: true,
        iamAuth: false,
        // Lambda sandboxes idle for minutes; close their client connections well before the default 30 min
        idleClientTimeout: Duration.minutes(5),
        maxConnectionsPercent: 90,
      });
      this.cluster.connections.allowDefaultPortFrom(this.proxy, 'RDS Proxy to Aurora');
      this.host = this.proxy.endpoint;
      this.port = PROXY_PORT;
    } else {
      this.host = this.cluster.clusterEndpoint.hostname;
      this.port = CLUSTER_PORT;
    }
  }

  /** Lets a security group (the app functions') open connections to the database endpoint. */
  allowFrom(peer: ec2.ISecurityGroup): void {
    if (this.proxy) this.proxy.connections.allowFrom(peer, ec2.Port.tcp(PROXY_PORT), 'MemorySync functions');
    else this.cluster.connections.allowFrom(peer, ec2.Port.tcp(CLUSTER_PORT), 'MemorySync functions');
  }
}
