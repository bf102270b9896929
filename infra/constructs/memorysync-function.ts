import type { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { resolve } from 'node:path';
import { bundleAliases, LAMBDA_BUNDLE, moduleClosure, REPO_ROOT } from '../bundling.ts';
import { CONTEXT } from '../profile.ts';
import { encryptedLogGroup } from './log-group.ts';

export interface MemorySyncFunctionProps {
  /** entry file relative to the repository root, e.g. `functions/api.ts` */
  entry: string;
  description: string;
  timeout: Duration;
  memorySize?: number;
  environment?: Record<string, string>;
  /** project key: the log group is encrypted with it */
  key: kms.IKey;
  vpc?: ec2.IVpc;
  securityGroups?: ec2.ISecurityGroup[];
  reservedConcurrentExecutions?: number;
  logRetention?: logs.RetentionDays;
  /** packages this function alone loads lazily (external in the bundle): copied with their dependencies into its asset */
  extraModules?: readonly string[];
}

/** Environment every MemorySync function starts with; `bind…` helpers add the rest. */
export const BASE_ENVIRONMENT: Readonly<Record<string, string>> = {
  NODE_ENV: 'production',
  NODE_OPTIONS: '--enable-source-maps',
  POWERTOOLS_SERVICE_NAME: 'memorysync',
  POWERTOOLS_METRICS_NAMESPACE: 'MemorySync',
  POWERTOOLS_LOG_LEVEL: 'INFO',
  LOG_LEVEL: 'INFO',
  DEV_BOOTSTRAP: 'false',
};

/**
 * The house Lambda: Node.js 22 on arm64, X-Ray tracing, its own encrypted log group with retention,
 * Powertools settings, and the shared esbuild bundling. With context `memorysync:skipBundling=true`
 * the code is an inline stub so template tests run without the entry files or esbuild.
 */
export class MemorySyncFunction extends Construct {
  readonly function: lambda.Function;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: MemorySyncFunctionProps) {
    super(scope, id);
    this.logGroup = encryptedLogGroup(this, 'Logs', props.key, props.logRetention);
    const common = {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      tracing: lambda.Tracing.ACTIVE,
      timeout: props.timeout,
      memorySize: props.memorySize ?? 1024,
      environment: { ...BASE_ENVIRONMENT, ...props.environment },
      logGroup: this.logGroup,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } : undefined,
      securityGroups: props.securityGroups,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    };
    if (skipBundling(this)) {
      this.function = new lambda.Function(this, 'Function', {
        ...common,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({});'),
      });
    } else {
      this.function = new NodejsFunction(this, 'Function', {
        ...common,
        entry: resolve(REPO_ROOT, props.entry),
        handler: 'handler',
        projectRoot: REPO_ROOT,
        depsLockFilePath: resolve(REPO_ROOT, 'package-lock.json'),
        bundling: {
          format: OutputFormat.ESM,
          target: LAMBDA_BUNDLE.target,
          minify: LAMBDA_BUNDLE.minify,
          sourceMap: LAMBDA_BUNDLE.sourceMap,
          sourcesContent: LAMBDA_BUNDLE.sourcesContent,
          mainFields: [...LAMBDA_BUNDLE.mainFields],
          banner: LAMBDA_BUNDLE.banner,
          externalModules: [...LAMBDA_BUNDLE.externalModules],
          esbuildArgs: Object.fromEntries(Object.entries(bundleAliases()).map(([pkg, stub]) => [`--alias:${pkg}`, stub])),
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            // Lazily loaded packages and data files are copied from the repository, so synth needs no network.
            afterBundling: (inputDir: string, outputDir: string) => [
              ...[...LAMBDA_BUNDLE.copiedModules, ...(props.extraModules?.length ? moduleClosure(props.extraModules) : [])]
                .map((m) => `mkdir -p "$(dirname "${outputDir}/node_modules/${m}")" && cp -R "${inputDir}/node_modules/${m}" "${outputDir}/node_modules/${m}"`),
              ...Object.entries(LAMBDA_BUNDLE.copiedFiles).map(([from, to]) => `mkdir -p "$(dirname "${outputDir}/${to}")" && cp "${inputDir}/${from}" "${outputDir}/${to}"`),
            ],
          },
        },
      });
    }
  }

  /** Sets an environment variable; `bind…` helpers call this together with the matching grant. */
  addEnvironment(name: string, value: string): this {
    this.function.addEnvironment(name, value);
    return this;
  }
}

function skipBundling(scope: Construct): boolean {
  const value = scope.node.tryGetContext(CONTEXT.skipBundling);
  return value === true || value === 'true';
}

/** Where functions run and what encrypts their logs: the same for every app function in a stack. */
export type FunctionPlacement = Pick<MemorySyncFunctionProps, 'key' | 'vpc' | 'securityGroups'>;
