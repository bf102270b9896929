import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { encryptedLogGroup } from './log-group.ts';

export interface NetworkProps {
  natGateways: number;
  key: kms.IKey;
  maxAzs?: number;
}

/**
 * Two-AZ VPC: functions in private subnets with NAT egress (webhooks, SIEM and integrations call the
 * internet), data stores in isolated subnets, an S3 gateway endpoint (free, keeps object traffic off
 * the NAT), flow logs to an encrypted log group. One security group for all app functions, so data
 * stores admit exactly that group.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly appSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: props.maxAzs ?? 2,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    const flowLogs = encryptedLogGroup(this, 'FlowLogs', props.key);
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    this.appSecurityGroup = new ec2.SecurityGroup(this, 'AppFunctions', {
      vpc: this.vpc,
      description: 'MemorySync Lambda functions',
      allowAllOutbound: true,
    });
  }
}
