import { randomBytes } from 'node:crypto';
import type { TestServer } from '../../support/server.ts';

/** A tenant as the suites use it: its owner's session, an unrestricted API key, its ids. */
export interface Actor {
  tenantId: string;
  projectId: string;
  email: string;
  token: string;
  accountPublicId: string;
  apiKey: string;
  apiKeyId: number;
}

/** Signs up an organization over HTTP (so sessions and keys are the real ones) and creates an API key. */
export async function newActor(server: TestServer, label: string, email = `${label}-${randomBytes(4).toString('hex')}@example.com`): Promise<Actor> {
  const signup = await server.call('POST', '/auth/signup', { body: { email, password: 'correct horse battery', organization_name: `Org ${label}` } });
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${JSON.stringify(signup.body)}`);
  const token = signup.body.tokens.access_token as string;
  const tenantId = signup.body.user.tenant_id as string;
  const projects = await server.call('GET', '/org/projects', { headers: { Authorization: `Bearer ${token}` } });
  const projectId = (projects.body as Array<{ id: string }>)[0]?.id;
  const key = await server.call('POST', '/org/api-keys', {
    headers: { Authorization: `Bearer ${token}` },
    body: { name: `${label} key`, scopes: ['memories:read', 'memories:write', 'projects:read', 'projects:write', 'keys:manage', 'webhooks:manage', 'audit:read'] },
  });
  if (key.status !== 201) throw new Error(`api key failed: ${key.status} ${JSON.stringify(key.body)}`);
  return { tenantId, projectId, email, token, accountPublicId: signup.body.user.id, apiKey: key.body.key, apiKeyId: Number(key.body.id) };
}

/**
 * The contract's error envelope, or the protocol shapes SCIM and the OAuth endpoints must answer with (RFC 6749 §5.2
 * errors from the token endpoint, which RFC 7662 introspection and RFC 7009 revocation reuse).
 */
export function hasErrorEnvelope(path: string, body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, any>;
  // answered by the HTTP server before routing (header block too large): the contract's envelope on every path
  if (b.error?.code === 'HEADERS_TOO_LARGE') return typeof b.request_id === 'string';
  if (path.startsWith('/scim/v2')) return Array.isArray(b.schemas) && b.schemas.includes('urn:ietf:params:scim:api:messages:2.0:Error') && typeof b.request_id === 'string';
  if (/^\/oauth\/(token|introspect|revoke)$/.test(path)) return typeof b.error === 'string' && typeof b.request_id === 'string';
  return typeof b.error?.code === 'string' && typeof b.error?.message === 'string' && typeof b.request_id === 'string';
}
