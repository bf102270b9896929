import { App, Aspects } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../../infra/app.ts';
import { CONTEXT, type ProfileName } from '../../infra/profile.ts';
import type { MemorySyncStack } from '../../infra/stacks/memorysync-stack.ts';

export interface SynthesizedProfile {
  stack: MemorySyncStack;
  template: Template;
  /** unsuppressed cdk-nag AwsSolutions findings, as "rule at path: message" lines */
  nagErrors: string[];
  nagWarnings: string[];
}

/** Hook/test timeout for anything that synthesizes a whole profile. */
export const SYNTH_TIMEOUT_MS = 600_000;

const cache = new Map<string, SynthesizedProfile>();

/**
 * Synthesizes one profile exactly as `cdk synth` composes it, with cdk-nag attached, but with Lambda
 * bundling replaced by inline stubs (context `memorysync:skipBundling`) so it is fast and needs no
 * entry files. Cached per profile and context within a test file. CloudFormation schema validation is
 * left to `cdk synth`.
 */
export function synthProfile(profile: ProfileName, extraContext: Record<string, unknown> = {}): SynthesizedProfile {
  const cacheKey = JSON.stringify([profile, extraContext]);
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const app = new App({
    context: { [CONTEXT.profile]: profile, [CONTEXT.skipBundling]: true, ...extraContext },
  });
  const stack = buildApp(app);
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  // aws-cdk-lib's built-in CloudFormation schema validation (a WASM validator) takes ~40 s per stack on a
  // busy 2-core machine; `cdk synth` (npm run synth) still runs it for every profile.
  const validation = process.env.CDK_VALIDATION;
  process.env.CDK_VALIDATION = 'false';
  try {
    app.synth();
  } finally {
    if (validation === undefined) delete process.env.CDK_VALIDATION;
    else process.env.CDK_VALIDATION = validation;
  }
  const template = Template.fromStack(stack);
  const describe = (entries: ReturnType<Annotations['findError']>) =>
    entries.map((e) => `${e.id}: ${String(e.entry.data).split('\n')[0]}`);
  const annotations = Annotations.fromStack(stack);
  const result: SynthesizedProfile = {
    stack,
    template,
    nagErrors: describe(annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))),
    nagWarnings: describe(annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))),
  };
  cache.set(cacheKey, result);
  return result;
}
