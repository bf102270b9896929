import type { App } from '../../app.ts';
import type { RetentionPolicyService } from '../../services/retention-policies.ts';
import type { SiemForwardingDeps } from '../../tasks/siem-forwarding.ts';
import type { RouteDefinition } from '../types.ts';
import { ssoRoutes } from './sso-routes.ts';
import { oauthRoutes } from './oauth-routes.ts';
import { scimRoutes } from './scim-routes.ts';
import { mcpRoutes } from './mcp-routes.ts';
import { healthRoutes } from './health-routes.ts';
import { identityRoutes } from './identity-routes.ts';
import { memoryRoutes } from './memory-routes.ts';
import { recallFeatureRoutes } from './recall-routes.ts';
import { openApiRoutes } from './openapi-routes.ts';
import { orgRoutes } from './org-routes.ts';
import { adminRoutes } from './admin-routes.ts';
import { webhookRoutes } from './webhook-routes.ts';
import { integrationRoutes } from './integration-routes.ts';
import { siemRoutes } from './siem-routes.ts';
import { retentionRoutes } from './retention-routes.ts';
import { attachDeletionReceipts, receiptRoutes } from './receipt-routes.ts';

/** What the routes use of the composition root, plus two route-only views of it. */
export type RouteDeps = Pick<
  App,
  | 'config' | 'db' | 'vectors' | 'embedder' | 'cache' | 'identity' | 'memories' | 'oidc' | 'saml' | 'oauth' | 'scim' | 'recall'
  | 'usage' | 'org' | 'billing' | 'admin' | 'webhooks' | 'integrations' | 'siem' | 'receipts'
> & {
  retentionPolicies: RetentionPolicyService;
  siemForwarding: SiemForwardingDeps;
};

/** The route table of the API: one list, used by the router, the OpenAPI document and the tests. */
export function buildRoutes(deps: RouteDeps): RouteDefinition[] {
  const routes = [
    ...healthRoutes(deps),
    ...identityRoutes(deps.identity, deps.usage),
    ...memoryRoutes(deps.memories, deps.recall.related),
    ...ssoRoutes(deps.oidc, deps.saml), ...oauthRoutes(deps.oauth), ...scimRoutes(deps.scim), ...mcpRoutes(deps.memories),
    ...recallFeatureRoutes(deps.recall, deps.memories),
    ...orgRoutes(deps),
    ...adminRoutes(deps.admin),
    ...webhookRoutes(deps.webhooks), ...siemRoutes(deps.siem, deps.siemForwarding),
    ...retentionRoutes(deps.retentionPolicies),
    ...integrationRoutes(deps.integrations),
    ...receiptRoutes(deps.receipts),
  ];
  attachDeletionReceipts(routes, deps.receipts);
  return [...routes, ...openApiRoutes(() => routes)];
}
