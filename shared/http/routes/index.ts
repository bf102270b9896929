import type { Config } from '../../config.ts';
import type { Cache } from '../../ports/cache.ts';
import type { Db } from '../../ports/db.ts';
import type { Embedder } from '../../ports/embedder.ts';
import type { VectorStore } from '../../ports/vector-store.ts';
import type { IdentityService } from '../../services/identity-service.ts';
import type { MemoryService } from '../../services/memory-service.ts';
import type { RecallFeatures } from '../../services/recall-features.ts';
import type { UsageService } from '../../services/usage-service.ts';
import type { OrgService } from '../../services/org-service.ts';
import type { BillingService } from '../../services/billing-service.ts';
import type { AdminService } from '../../services/admin-service.ts';
import type { OidcService } from '../../services/oidc-service.ts';
import type { OAuthService } from '../../services/oauth-service.ts';
import type { ScimService } from '../../services/scim/scim-service.ts';
import type { WebhookService } from '../../services/webhook-service.ts';
import type { IntegrationService } from '../../services/integration-service.ts';
import type { SiemService } from '../../services/siem-service.ts';
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
import type { DeletionReceipts } from '../../services/deletion-receipts.ts';

export interface RouteDeps {
  config: Config;
  db: Db;
  vectors: VectorStore;
  embedder: Embedder;
  cache: Cache;
  identity: IdentityService;
  memories: MemoryService;
  oidc: OidcService;
  oauth: OAuthService;
  scim: ScimService;
  recall: RecallFeatures;
  usage: UsageService;
  org: OrgService;
  billing: BillingService;
  admin: AdminService;
  webhooks: WebhookService;
  integrations: IntegrationService;
  siem: SiemService;
  retentionPolicies: RetentionPolicyService;
  siemForwarding: SiemForwardingDeps;
  receipts: DeletionReceipts;
}

/** The route table of the API: one list, used by the router, the OpenAPI document and the tests. */
export function buildRoutes(deps: RouteDeps): RouteDefinition[] {
  const routes = [
    ...healthRoutes(deps),
    ...identityRoutes(deps.identity, deps.usage),
    ...memoryRoutes(deps.memories),
    ...ssoRoutes(deps.oidc), ...oauthRoutes(deps.oauth), ...scimRoutes(deps.scim), ...mcpRoutes(deps.memories),
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
