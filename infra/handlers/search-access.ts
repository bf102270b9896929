import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws-v3';

/** The OpenSearch security role the app's Lambda roles are mapped to. */
export const APP_SEARCH_ROLE = 'memorysync_app';

/**
 * What the app may do in the domain: read/write and manage its own `memorysync-*` indexes and aliases
 * (index per user, or the shared index with filtered aliases), and nothing else.
 */
export function appSearchRole(): Record<string, unknown> {
  return {
    cluster_permissions: ['cluster_composite_ops', 'cluster_monitor'],
    index_permissions: [
      {
        index_patterns: ['memorysync-*'],
        allowed_actions: ['crud', 'create_index', 'manage', 'indices:admin/aliases*'],
      },
    ],
  };
}

/**
 * Deploy-time trigger, run as the domain's fine-grained-access master role: maps the app functions' IAM
 * roles to {@link APP_SEARCH_ROLE}. IAM alone is not enough with fine-grained access control; without
 * this mapping every signed request from the app would be refused.
 */
export const handler = async (): Promise<{ role: string; mappedRoles: number }> => {
  const endpoint = process.env.OPENSEARCH_ENDPOINT;
  const roleArns = JSON.parse(process.env.APP_ROLE_ARNS ?? '[]') as string[];
  if (!endpoint || roleArns.length === 0) throw new Error('OPENSEARCH_ENDPOINT and APP_ROLE_ARNS are required');
  const client = new Client({
    ...AwsSigv4Signer({
      region: process.env.AWS_REGION ?? 'us-east-1',
      service: 'es',
      getCredentials: defaultProvider(),
    }),
    node: endpoint.startsWith('https://') ? endpoint : `https://${endpoint}`,
  });
  await client.transport.request({
    method: 'PUT',
    path: `/_plugins/_security/api/roles/${APP_SEARCH_ROLE}`,
    body: appSearchRole(),
  });
  await client.transport.request({
    method: 'PUT',
    path: `/_plugins/_security/api/rolesmapping/${APP_SEARCH_ROLE}`,
    body: { backend_roles: roleArns },
  });
  return { role: APP_SEARCH_ROLE, mappedRoles: roleArns.length };
};
