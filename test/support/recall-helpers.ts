import type { Principal } from '#shared/services/scope.ts';
import { hashPassword } from '#shared/crypto/hashing.ts';
import type { TestServer } from './server.ts';

/** An API key of `tenantId` with exactly `scopes`. */
export async function keyWithScopes(server: TestServer, tenantId: string, scopes: string[]): Promise<string> {
  const system: Principal = {
    kind: 'session', tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner', scopes: [],
    projectLock: null, environment: 'production', rateLimitTier: 'unlimited', platformAdmin: false,
  };
  const key = await server.app.identity.createApiKey({ tenantId, projectId: null, principal: system }, { name: `scoped-${scopes.join('-')}`, scopes }, { requestId: 'test', ipAddress: null, userAgent: 'test', audit: { written: false } });
  return key.key;
}

/** A signed-in account of `tenantId` with `role`; returns its bearer token. */
export async function sessionWithRole(server: TestServer, tenantId: string, role: 'owner' | 'admin' | 'member' | 'viewer'): Promise<string> {
  const email = `${role}-${Math.random().toString(36).slice(2)}@example.test`;
  const password = 'correct horse battery staple';
  await server.app.db.kysely.insertInto('users').values({ public_id: `usr_${Math.random().toString(16).slice(2, 18).padEnd(16, '0')}`, tenant_id: tenantId, kind: 'account', external_id: null, email, password_hash: await hashPassword(password), full_name: null, role }).execute();
  const res = await server.call('POST', '/auth/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.tokens.access_token as string;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
