import { Duration, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { encryptedLogGroup } from './log-group.ts';
import { MemorySyncFunction } from './memorysync-function.ts';

export interface SearchProps {
  vpc: ec2.IVpc;
  key: kms.IKey;
  appSecurityGroup: ec2.ISecurityGroup;
  dataNodeType: string;
  dataNodes: number;
  masterNodeType: string;
  masterNodes: number;
  volumeGb: number;
  ephemeral?: boolean;
}

/**
 * The vector index: an OpenSearch domain (k-NN is built in) inside the VPC, across two AZs with
 * dedicated masters, encrypted at rest with the project key and node to node, HTTPS only, with
 * fine-grained access control whose master is a deploy-time role (never a password). The app's roles
 * are mapped to a role limited to `memorysync-*` indexes by a trigger after the domain exists.
 */
export class Search extends Construct {
  readonly domain: opensearch.Domain;
  private readonly appRoleArns: string[] = [];

  constructor(scope: Construct, id: string, props: SearchProps) {
    super(scope, id);
    const removalPolicy = props.ephemeral ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const securityGroup = new ec2.SecurityGroup(this, 'DomainSecurityGroup', {
      vpc: props.vpc,
      description: 'MemorySync OpenSearch domain',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(props.appSecurityGroup, ec2.Port.tcp(443), 'HTTPS from MemorySync functions');

    const accessMapper = new MemorySyncFunction(this, 'AccessMapper', {
      entry: 'infra/handlers/search-access.ts',
      description: 'MemorySync role mapping into the OpenSearch security plugin (deploy trigger)',
      timeout: Duration.minutes(2),
      memorySize: 256,
      key: props.key,
      vpc: props.vpc,
      securityGroups: [props.appSecurityGroup],
    });

    const logGroup = (name: string) => encryptedLogGroup(this, name, props.key);
    const isolated = props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED });
    this.domain = new opensearch.Domain(this, 'Domain', {
      version: opensearch.EngineVersion.OPENSEARCH_2_19,
      vpc: props.vpc,
      vpcSubnets: [{ subnets: isolated.subnets.slice(0, 2) }],
      securityGroups: [securityGroup],
      capacity: {
        dataNodes: props.dataNodes,
        dataNodeInstanceType: props.dataNodeType,
        masterNodes: props.masterNodes,
        masterNodeInstanceType: props.masterNodeType,
        multiAzWithStandbyEnabled: false,
      },
      zoneAwareness: { enabled: true, availabilityZoneCount: 2 },
      ebs: { volumeSize: props.volumeGb, volumeType: ec2.EbsDeviceVolumeType.GP3 },
      encryptionAtRest: { enabled: true, kmsKey: props.key },
      nodeToNodeEncryption: true,
      enforceHttps: true,
      tlsSecurityPolicy: opensearch.TLSSecurityPolicy.TLS_1_2,
      fineGrainedAccessControl: { masterUserArn: accessMapper.function.role!.roleArn },
      logging: {
        slowSearchLogEnabled: true,
        slowSearchLogGroup: logGroup('SlowSearchLogs'),
        slowIndexLogEnabled: true,
        slowIndexLogGroup: logGroup('SlowIndexLogs'),
        appLogEnabled: true,
        appLogGroup: logGroup('AppLogs'),
        auditLogEnabled: true,
        auditLogGroup: logGroup('AuditLogs'),
      },
      removalPolicy,
    });
    // Resource policy: delegate to IAM in this account (no anonymous principal); identity policies and
    // the security plugin's role mapping then decide who may do what.
    this.domain.addAccessPolicies(
      new iam.PolicyStatement({
        principals: [new iam.AccountRootPrincipal()],
        actions: ['es:ESHttp*'],
        resources: [`${this.domain.domainArn}/*`],
      }),
    );
    this.domain.grantReadWrite(accessMapper.function);
    accessMapper
      .addEnvironment('OPENSEARCH_ENDPOINT', this.domain.domainEndpoint)
      .addEnvironment('APP_ROLE_ARNS', Lazy.string({ produce: () => Stack.of(this).toJsonString(this.appRoleArns) }));

    new triggers.Trigger(this, 'MapAppRoles', {
      handler: accessMapper.function,
      executeAfter: [this.domain],
      executeOnHandlerChange: true,
      timeout: Duration.minutes(2),
    });
  }

  /** Grants a function signed HTTP access to the domain and maps its role in the security plugin. */
  allowApp(role: iam.IRole, grantee: iam.IGrantable): void {
    this.domain.grantReadWrite(grantee);
    this.appRoleArns.push(role.roleArn);
  }
}
