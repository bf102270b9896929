import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Kysely, Selectable } from 'kysely';
import type { Database, SsoProvidersTable } from '../db/schema.ts';
import { AppError, conflict, forbidden, notFound, unauthorized } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import { open, seal } from '../crypto/aead.ts';
import { randomToken } from '../crypto/hashing.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta, type AuthResult, type IdentityService } from './identity-service.ts';
import { newUserPublicId } from './ids.ts';
import { assertPublicUrl, OutboundUrlError } from './outbound-url.ts';
import type { Role, Scope } from './scope.ts';

export const OIDC_STATE_TTL_SECONDS = 600;
const DISCOVERY_TTL_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 5_000;

type ProviderRow = Selectable<SsoProvidersTable>;

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
}

interface LoginState {
  providerId: string;
  nonce: string;
  verifier: string;
}

export interface OidcDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  tenantKeys: TenantKeyService;
  identity: IdentityService;
  /** loopback/private issuers (tests, local dev); false in production */
  allowPrivateIssuers: boolean;
}

export interface CreateProviderInput {
  name: string;
  issuer: string;
  client_id: string;
  client_secret?: string | null;
  scopes?: string;
  redirect_uri: string;
  default_role: Exclude<Role, 'owner'>;
}

export function toProviderResponse(row: ProviderRow) {
  const common = { id: row.id, kind: row.kind, name: row.name, default_role: row.default_role, login_url: `/sso/${row.kind}/${row.id}/login`, created_at: new Date(row.created_at).toISOString() };
  if (row.kind === 'saml') {
    return {
      ...common, idp_entity_id: row.issuer, sso_url: row.sso_url, sp_entity_id: row.client_id, acs_url: row.redirect_uri, metadata_url: `/sso/saml/${row.id}/metadata`,
      idp_certificate_fingerprints: certificateFingerprints(row.idp_certificate ?? ''),
    };
  }
  return { ...common, issuer: row.issuer, client_id: row.client_id, has_client_secret: row.client_secret_ciphertext !== null, scopes: row.scopes, redirect_uri: row.redirect_uri };
}

/** SHA-256 fingerprints of the PEM certificates in `pem` (what an admin compares with the IdP's console). */
export function certificateFingerprints(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c).fingerprint256);
}

/**
 * The provider a public login URL names, of the expected kind. The provider id is the public entry
 * point of a login: it names its tenant, nothing else does.
 */
export async function loginProviderOrThrow(db: Kysely<Database>, providerId: string, kind: 'oidc' | 'saml'): Promise<ProviderRow> {
  const row = await db
    .selectFrom('sso_providers as p')
    .innerJoin('tenants as t', 't.id', 'p.tenant_id')
    .selectAll('p')
    .select('t.status')
    .where('p.id', '=', providerId)
    .where('p.kind', '=', kind)
    .executeTakeFirst();
  if (!row) throw notFound('SSO provider not found');
  if (row.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
  return row;
}

const secretAad = (tenantId: string, providerId: string) => `sso-client-secret:${tenantId}:${providerId}`;
const stateKey = (state: string) => `oidc:state:${state}`;

/**
 * Just-in-time provisioning shared by OIDC and SAML logins, in the tenant that owns the provider: the
 * account linked to `(provider, subject)`; else an account of the same tenant with the same verified
 * email (then linked); else a new account with the provider's default role and no password.
 */
export async function linkOrProvision(trx: Kysely<Database>, provider: Pick<ProviderRow, 'id' | 'tenant_id' | 'default_role'>, subject: string, email: string | undefined, emailVerified: boolean, name: string | undefined): Promise<number> {
  const tenantId = provider.tenant_id;
  const linked = await trx.selectFrom('identity_links').select('user_id').where('provider_id', '=', provider.id).where('subject', '=', subject).where('tenant_id', '=', tenantId).executeTakeFirst();
  let userId = linked?.user_id;
  if (userId === undefined && email && emailVerified) {
    const existing = await trx.selectFrom('users').select(['id', 'tenant_id']).where('email', '=', email).where('kind', '=', 'account').executeTakeFirst();
    if (existing && existing.tenant_id !== tenantId) throw conflict('This email belongs to an account of another organization');
    userId = existing?.id;
  }
  if (userId === undefined) {
    const created = await trx
      .insertInto('users')
      .values({ public_id: newUserPublicId(), tenant_id: tenantId, kind: 'account', external_id: null, email: emailVerified ? (email ?? null) : null, password_hash: null, full_name: name ?? null, role: provider.default_role })
      .returning('id')
      .executeTakeFirstOrThrow();
    userId = created.id;
  }
  if (!linked) await trx.insertInto('identity_links').values({ tenant_id: tenantId, provider_id: provider.id, subject, user_id: userId }).execute();
  const scim = await trx.selectFrom('scim_users').select('active').where('user_id', '=', userId).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (scim && !scim.active) throw forbidden('This account is deactivated', 'ACCOUNT_DISABLED');
  return userId;
}

/**
 * OpenID Connect login against any standard issuer: discovery (`/.well-known/openid-configuration`),
 * the code flow with state, nonce and PKCE S256, ID tokens verified with the issuer's JWKS, and an
 * account provisioned just in time in the tenant that owns the provider config.
 */
export class OidcService {
  private readonly discoveries = new Map<string, { doc: Discovery; until: number }>();
  private readonly jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(private readonly deps: OidcDeps) {}

  // ---------- provider configs (tenant admins)

  /** Stores a provider after its discovery document has been fetched and checked; the client secret is sealed with the tenant's data key. */
  async createProvider(scope: Scope, input: CreateProviderInput, meta: AuditMeta) {
    await this.discover(input.issuer);
    const id = `sso_${randomBytes(8).toString('hex')}`;
    const keys = await this.deps.tenantKeys.forTenant(scope.tenantId);
    const sealed = input.client_secret ? seal(keys.dataKey, input.client_secret, secretAad(scope.tenantId, id)) : null;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('sso_providers')
        .values({
          id, tenant_id: scope.tenantId, kind: 'oidc', name: input.name, issuer: input.issuer, client_id: input.client_id, client_secret_ciphertext: sealed,
          scopes: input.scopes ?? 'openid email profile', redirect_uri: input.redirect_uri.replace('{provider_id}', id), default_role: input.default_role, created_by: scope.principal.accountId,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'sso_provider.created', category: 'security', resourceType: 'sso_provider', resourceId: id, action: 'create', status: 'success', statusCode: 201, payload: { issuer: input.issuer, client_id: input.client_id } });
      meta.audit.written = true;
      return toProviderResponse(row);
    });
  }

  async listProviders(scope: Scope) {
    const rows = await this.deps.db.selectFrom('sso_providers').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('created_at', 'desc').execute();
    return rows.map(toProviderResponse);
  }

  async deleteProvider(scope: Scope, providerId: string, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.deleteFrom('sso_providers').where('tenant_id', '=', scope.tenantId).where('id', '=', providerId).returningAll().executeTakeFirst();
      if (!row) throw notFound('SSO provider not found');
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'sso_provider.deleted', category: 'security', resourceType: 'sso_provider', resourceId: providerId, action: 'delete', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return toProviderResponse(row);
    });
  }

  // ---------- login

  /** The issuer's authorization URL for a fresh login; `state` is also returned so the caller can bind it to the browser. */
  async beginLogin(providerId: string): Promise<{ authorizationUrl: string; state: string }> {
    const provider = await this.providerOrThrow(providerId);
    const discovery = await this.discover(provider.issuer);
    const state = randomToken(24);
    const nonce = randomToken(24);
    const verifier = randomToken(48); // 64 characters, within PKCE's 43-128
    await this.deps.cache.set(stateKey(state), { providerId, nonce, verifier } satisfies LoginState, OIDC_STATE_TTL_SECONDS);
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      ...Object.fromEntries(url.searchParams),
      response_type: 'code', client_id: provider.client_id, redirect_uri: provider.redirect_uri, scope: provider.scopes, state, nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    return { authorizationUrl: url.toString(), state };
  }

  /**
   * Finishes a login: the state is single-use and must belong to this provider, the code is exchanged
   * with the PKCE verifier, the ID token is verified (signature by the issuer's JWKS, issuer, audience,
   * expiry, nonce), and the account is found by its link, by verified email in the same tenant, or
   * created. Returns the same AuthResult as `/auth/login`.
   */
  async completeLogin(providerId: string, input: { code?: string; state?: string; iss?: string; error?: string; error_description?: string }, meta: AuditMeta): Promise<AuthResult> {
    if (input.error) throw unauthorized(`The identity provider refused the login: ${input.error}`, 'SSO_DENIED');
    if (!input.code || !input.state) throw new AppError('VALIDATION_ERROR', 422, 'code and state are required', []);
    const saved = await this.deps.cache.get<LoginState>(stateKey(input.state));
    await this.deps.cache.del(stateKey(input.state));
    if (!saved || saved.providerId !== providerId) throw unauthorized('Unknown or expired login state', 'SSO_STATE_INVALID');
    const provider = await this.providerOrThrow(providerId);
    const discovery = await this.discover(provider.issuer);
    // RFC 9207: an issuer that names itself in the response must be the one this login went to (mix-up defence).
    if (input.iss !== undefined && input.iss !== discovery.issuer) throw unauthorized('The response comes from another issuer', 'SSO_ISSUER_MISMATCH');
    const tokens = await this.exchangeCode(provider, discovery, input.code, saved.verifier);
    const claims = await this.verifyIdToken(provider, discovery, tokens.id_token, saved.nonce);
    let email = typeof claims.email === 'string' ? claims.email : undefined;
    let emailVerified = claims.email_verified;
    let name = typeof claims.name === 'string' ? claims.name : undefined;
    if (!email && discovery.userinfo_endpoint && tokens.access_token) {
      const info = await this.userinfo(discovery.userinfo_endpoint, tokens.access_token);
      if (info.sub === claims.sub) ({ email, email_verified: emailVerified, name = name } = info as { email?: string; email_verified?: unknown; name?: string });
    }
    return this.deps.db.transaction().execute(async (trx) => {
      const userId = await linkOrProvision(trx, provider, claims.sub!, typeof email === 'string' ? email.trim().toLowerCase() : undefined, emailVerified !== false, name);
      const result = await this.deps.identity.openVerifiedSession(trx, userId, provider.tenant_id, 'web');
      await writeAudit(trx, { ...auditBase(meta), tenantId: provider.tenant_id, userId, principal: result.user.id, eventType: 'auth.sso_login', category: 'auth', resourceType: 'session', resourceId: result.session.id, action: 'login', status: 'success', statusCode: 200, payload: { provider_id: provider.id } });
      meta.audit.written = true;
      return result;
    });
  }

  // ---------- talking to the issuer

  private providerOrThrow(providerId: string): Promise<ProviderRow> {
    return loginProviderOrThrow(this.deps.db, providerId, 'oidc');
  }

  private async guardedFetch(url: string, init: RequestInit = {}): Promise<Response> {
    try {
      await assertPublicUrl(url, { allowPrivate: this.deps.allowPrivateIssuers });
    } catch (err) {
      if (err instanceof OutboundUrlError) throw new AppError('SSO_ISSUER_REJECTED', 422, `Issuer URL not allowed: ${err.message}`, []);
      throw err;
    }
    try {
      return await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    } catch {
      throw new AppError('SSO_ISSUER_UNAVAILABLE', 502, 'The identity provider could not be reached');
    }
  }

  /** Fetches and checks the discovery document (cached 10 min); its `issuer` must equal the configured one exactly. */
  private async discover(issuer: string): Promise<Discovery> {
    const hit = this.discoveries.get(issuer);
    if (hit && hit.until > Date.now()) return hit.doc;
    const res = await this.guardedFetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new AppError('SSO_ISSUER_UNAVAILABLE', 502, `Discovery failed with HTTP ${res.status}`);
    const doc = (await res.json().catch(() => ({}))) as Partial<Discovery>;
    if (doc.issuer !== issuer) throw new AppError('SSO_ISSUER_MISMATCH', 502, 'The discovery document names another issuer');
    if (!doc.authorization_endpoint || !doc.token_endpoint || !doc.jwks_uri) throw new AppError('SSO_ISSUER_UNAVAILABLE', 502, 'The discovery document lacks required endpoints');
    for (const endpoint of [doc.authorization_endpoint, doc.token_endpoint, doc.jwks_uri, doc.userinfo_endpoint]) {
      if (endpoint) await assertPublicUrl(endpoint, { allowPrivate: this.deps.allowPrivateIssuers }).catch(() => {
        throw new AppError('SSO_ISSUER_REJECTED', 502, 'The discovery document names an endpoint that is not allowed');
      });
    }
    this.discoveries.set(issuer, { doc: doc as Discovery, until: Date.now() + DISCOVERY_TTL_MS });
    return doc as Discovery;
  }

  private async exchangeCode(provider: ProviderRow, discovery: Discovery, code: string, verifier: string): Promise<{ id_token: string; access_token?: string }> {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: provider.redirect_uri, code_verifier: verifier });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const secret = provider.client_secret_ciphertext
      ? open((await this.deps.tenantKeys.forTenant(provider.tenant_id)).dataKey, provider.client_secret_ciphertext, secretAad(provider.tenant_id, provider.id)).toString('utf8')
      : undefined;
    const methods = discovery.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
    if (secret && methods.includes('client_secret_basic')) {
      const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
      headers.authorization = `Basic ${Buffer.from(`${enc(provider.client_id)}:${enc(secret)}`).toString('base64')}`;
    } else {
      form.set('client_id', provider.client_id);
      if (secret) form.set('client_secret', secret);
    }
    const res = await this.guardedFetch(discovery.token_endpoint, { method: 'POST', headers, body: form.toString() });
    const body = (await res.json().catch(() => ({}))) as { id_token?: string; access_token?: string; error?: string };
    if (!res.ok || !body.id_token) throw unauthorized(`The identity provider rejected the code${body.error ? ` (${body.error})` : ''}`, 'SSO_CODE_REJECTED');
    return { id_token: body.id_token, access_token: body.access_token };
  }

  private async verifyIdToken(provider: ProviderRow, discovery: Discovery, idToken: string, nonce: string): Promise<JWTPayload> {
    let jwks = this.jwks.get(discovery.jwks_uri);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { timeoutDuration: FETCH_TIMEOUT_MS });
      this.jwks.set(discovery.jwks_uri, jwks);
    }
    let payload: JWTPayload;
    try {
      // Asymmetric algorithms only: an HS256 token signed with the (tenant-known) client secret is refused.
      ({ payload } = await jwtVerify(idToken, jwks, { issuer: discovery.issuer, audience: provider.client_id, algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] }));
    } catch {
      throw unauthorized('The ID token failed verification', 'SSO_TOKEN_INVALID');
    }
    if (payload.nonce !== nonce) throw unauthorized('The ID token nonce does not match the login', 'SSO_TOKEN_INVALID');
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== provider.client_id) throw unauthorized('The ID token was issued to another party', 'SSO_TOKEN_INVALID');
    if (typeof payload.sub !== 'string' || !payload.sub) throw unauthorized('The ID token has no subject', 'SSO_TOKEN_INVALID');
    return payload;
  }

  private async userinfo(endpoint: string, accessToken: string): Promise<Record<string, unknown>> {
    const res = await this.guardedFetch(endpoint, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } });
    return res.ok ? ((await res.json().catch(() => ({}))) as Record<string, unknown>) : {};
  }
}
