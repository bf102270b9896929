import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface CacheProps {
  vpc: ec2.IVpc;
  key: kms.IKey;
  appSecurityGroup: ec2.ISecurityGroup;
  nodeType: string;
  /** 1 = single node; ≥2 = primary + replicas with Multi-AZ automatic failover */
  nodes: number;
}

/** Non-default port (cdk-nag AwsSolutions-AEC5); the app reads it from REDIS_URL. */
export const CACHE_PORT = 6380;

/**
 * The transient cache: ElastiCache for Redis OSS 7 in the isolated subnets, TLS in transit, encrypted
 * at rest with the project key, reachable only from the app functions' security group.
 */
export class Cache extends Construct {
  readonly replicationGroup: elasticache.CfnReplicationGroup;
  /** `rediss://host:port` for REDIS_URL */
  readonly url: string;

  constructor(scope: Construct, id: string, props: CacheProps) {
    super(scope, id);
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'MemorySync Redis',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(props.appSecurityGroup, ec2.Port.tcp(CACHE_PORT), 'Redis from MemorySync functions');
    const subnets = new elasticache.CfnSubnetGroup(this, 'Subnets', {
      description: 'MemorySync Redis subnets',
      subnetIds: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
    });
    const replicated = props.nodes > 1;
    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: 'MemorySync cache',
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: props.nodeType,
      numCacheClusters: props.nodes,
      automaticFailoverEnabled: replicated,
      multiAzEnabled: replicated,
      port: CACHE_PORT,
      cacheSubnetGroupName: subnets.ref,
      securityGroupIds: [securityGroup.securityGroupId],
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      atRestEncryptionEnabled: true,
      kmsKeyId: props.key.keyArn,
      autoMinorVersionUpgrade: true,
      snapshotRetentionLimit: 0,
    });
    this.url = `rediss://${this.replicationGroup.attrPrimaryEndPointAddress}:${CACHE_PORT}`;
  }
}
