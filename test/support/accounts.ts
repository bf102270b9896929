import { randomBytes } from 'node:crypto';
import { hashPassword } from '#shared/crypto/hashing.ts';
import { newUserPublicId } from '#shared/services/ids.ts';
import type { TestServer } from './server.ts';

export interface Account {
  token: string;
  tenantId: string;
  email: string;
  userId: string;
}

export const bearer = (token: string, extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${token}`, ...extra });

/** Signs up a new organization; the caller is its owner. */
export async function signupOwner(server: TestServer, label = 'owner'): Promise<Account> {
  const email = `${label}-${randomBytes(4).toString('hex')}@example.com`;
  const res = await server.call('POST', '/auth/signup', { body: { email, password: 'correct horse battery', organization_name: `Org ${label}` } });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { token: res.body.tokens.access_token, tenantId: res.body.user.tenant_id, email, userId: res.body.user.id };
}

/** Adds an account with the given role to a tenant (as an invitation would) and logs it in. */
export async function addMember(server: TestServer, tenantId: string, role: 'admin' | 'member' | 'viewer'): Promise<Account> {
  const email = `${role}-${randomBytes(4).toString('hex')}@example.com`;
  await server.app.db.kysely.insertInto('users').values({
    public_id: newUserPublicId(), tenant_id: tenantId, kind: 'account', external_id: null, email, password_hash: await hashPassword('correct horse battery'), full_name: null, role,
  }).execute();
  const res = await server.call('POST', '/auth/login', { body: { email, password: 'correct horse battery' } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`);
  return { token: res.body.tokens.access_token, tenantId, email, userId: res.body.user.id };
}

/** fetch without following redirects, so a test can read the Location a route answers with. */
export async function fetchManual(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, redirect: 'manual' });
}

/** Row count of a table, for "nothing was written" assertions. */
export async function countRows(server: TestServer, table: string): Promise<number> {
  const row = await server.app.db.kysely.selectFrom(table as 'users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}
