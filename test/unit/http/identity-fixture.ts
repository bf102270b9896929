import { randomBytes } from 'node:crypto';
import { createApp, type App } from '#shared/app.ts';
import { loadConfig } from '#shared/config.ts';
import type { AuditMeta } from '#shared/services/identity-service.ts';
import type { Scope } from '#shared/services/scope.ts';

export interface IdentityFixture {
  app: App;
  /** the HS256 secret the app signs access tokens with */
  jwtSecret: string;
  /** an owner's scope in `tenantId`, as an admin acting through the org routes would have */
  ownerScope(tenantId: string): Scope;
  meta(): AuditMeta;
  /** an API key made through the real IdentityService (plaintext and row id) */
  createKey(tenantId: string, input: { scopes?: string[]; project_id?: string | null; environment?: string }): Promise<{ key: string; id: number }>;
}

/**
 * A real app on an in-memory PGlite: the middlewares under test talk to the real IdentityService,
 * cache and database, exactly as in the API Lambda.
 */
export async function startIdentityFixture(): Promise<IdentityFixture> {
  const jwtSecret = randomBytes(32).toString('base64url');
  const app = await createApp(loadConfig({ MEMORYSYNC_DATA_DIR: ':memory:', LOG_LEVEL: 'SILENT', DEV_BOOTSTRAP: 'false' }), { jwtSecret });
  const meta = (): AuditMeta => ({ requestId: 'fixture', ipAddress: null, userAgent: 'vitest', audit: { written: false } });
  const ownerScope = (tenantId: string): Scope => ({
    tenantId, projectId: null,
    principal: {
      kind: 'session', tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner', scopes: [],
      projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false,
    },
  });
  return {
    app, jwtSecret, ownerScope, meta,
    async createKey(tenantId, input) {
      const created = await app.identity.createApiKey(ownerScope(tenantId), { name: 'test key', ...input }, meta());
      return { key: created.key, id: created.id };
    },
  };
}
