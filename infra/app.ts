import type { App } from 'aws-cdk-lib';
import { CONTEXT, profileSettings } from './profile.ts';
import { MemorySyncStack } from './stacks/memorysync-stack.ts';

/** Stack name per profile, so profiles can live side by side in one account. */
export function stackName(profile: string): string {
  return profile === 'standard' ? 'MemorySync' : `MemorySync-${profile}`;
}

/**
 * Composes the app from context: `profile` (standard | lean | localstack), optional alarm e-mail,
 * OpenSearch namespace mode and deletion protection. Region/account come from the CLI environment.
 */
export function buildApp(app: App): MemorySyncStack {
  const settings = profileSettings(app.node.tryGetContext(CONTEXT.profile) ?? 'standard');
  const deletionProtection = app.node.tryGetContext(CONTEXT.deletionProtection);
  const namespaceMode = app.node.tryGetContext('memorysync:namespaceMode');
  return new MemorySyncStack(app, stackName(settings.name), {
    settings,
    description: `MemorySync memory API (${settings.name} profile)`,
    env: settings.aws
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : { account: '000000000000', region: process.env.AWS_REGION ?? 'us-east-1' },
    deletionProtection: deletionProtection === undefined ? undefined : deletionProtection === true || deletionProtection === 'true',
    namespaceMode: namespaceMode === 'index-per-user' ? 'index-per-user' : 'shared',
    alarmEmail: app.node.tryGetContext(CONTEXT.alarmEmail),
  });
}
