import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt, jwtVerify, errors as joseErrors } from 'jose';
import type { Kysely, Selectable } from 'kysely';
import type { Database, OauthAppsTable } from '../db/schema.ts';
import { AppError, notFound, unauthorized } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import { randomToken, safeEqual, sha256Hex } from '../crypto/hashing.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta } from './identity-service.ts';
import type { Principal, Role, Scope } from './scope.ts';

/** Scopes an OAuth app may hold; `keys:*`, webhooks and audit stay with API keys and sessions. */
export const OAUTH_SCOPES = ['memories:read', 'memories:write', 'projects:read', 'projects:write'] as const;
/** What a signed-in user of each role can delegate to an app through the authorization-code flow. */
const DELEGABLE: Record<Role, readonly string[]> = {
  viewer: ['memories:read', 'projects:read'],
  member: ['memories:read', 'memories:write', 'projects:read'],
  admin: OAUTH_SCOPES,
  owner: OAUTH_SCOPES,
};

export const PENDING_AUTHORIZATION_TTL_SECONDS = 600;
const CODE_TTL_SECONDS = 60;
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

type AppRow = Selectable<OauthAppsTable>;

export interface OAuthDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  /** HS256 key material for access tokens (derived from the JWT secret, never the same bytes) */
  signingSecret: string;
  issuer: string;
  accessTokenTtlSeconds: number;
  cacheTtlSeconds: number;
}

export interface AuthorizeRequest {
  response_type: string;
  client_id: string;
  redirect_uri: string;
  state?: string;
  scope?: string;
  code_challenge: string;
  code_challenge_method: string;
}

interface PendingAuthorization {
  appId: string;
  tenantId: string;
  userId: number;
  redirectUri: string;
  state: string | null;
  scopes: string[];
  codeChallenge: string;
}

export interface TokenRequest {
  grant_type: string;
  code?: string;
  redirect_uri?: string;
  client_id?: string;
  client_secret?: string;
  code_verifier?: string;
  scope?: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

const oauthError = (code: string, message: string, status = 400) => new AppError(code, status, message);
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
const parseScope = (scope: string | undefined) => (scope ?? '').split(' ').map((s) => s.trim()).filter(Boolean);

export function toOAuthAppResponse(row: AppRow) {
  return {
    id: row.id, name: row.name, client_id: row.client_id, client_type: row.client_type, redirect_uris: row.redirect_uris,
    scopes: row.scopes, created_at: new Date(row.created_at).toISOString(),
  };
}

/**
 * OAuth 2.0 apps of a tenant: registration, the authorization-code grant with PKCE S256 (the signed-in
 * user approves), the client-credentials grant for confidential clients, and the bearer tokens both
 * grants issue — HS256 JWTs with `typ: oauth` that the authentication middleware maps to a principal.
 */
export class OAuthService {
  private readonly key: Uint8Array;

  constructor(private readonly deps: OAuthDeps) {
    this.key = new TextEncoder().encode(deps.signingSecret);
  }

  // ---------- app registration (tenant admins)

  async createApp(scope: Scope, input: { name: string; client_type: 'confidential' | 'public'; redirect_uris: string[]; scopes: string[] }, meta: AuditMeta) {
    if (input.client_type === 'public' && input.redirect_uris.length === 0) throw oauthError('VALIDATION_ERROR', 'public clients need at least one redirect_uri', 422);
    const secret = input.client_type === 'confidential' ? `mscs_${randomToken(32)}` : null;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('oauth_apps')
        .values({
          id: `oap_${randomBytes(8).toString('hex')}`, tenant_id: scope.tenantId, name: input.name, client_id: `msc_${randomBytes(12).toString('hex')}`,
          client_type: input.client_type, client_secret_hash: secret ? sha256Hex(secret) : null,
          redirect_uris: JSON.stringify(input.redirect_uris), scopes: JSON.stringify(input.scopes), created_by: scope.principal.accountId,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'oauth_app.created', category: 'security', resourceType: 'oauth_app', resourceId: row.id, action: 'create', status: 'success', statusCode: 201, payload: { client_id: row.client_id, client_type: row.client_type, scopes: row.scopes } });
      meta.audit.written = true;
      return { ...toOAuthAppResponse(row), ...(secret ? { client_secret: secret } : {}) };
    });
  }

  async listApps(scope: Scope) {
    const rows = await this.deps.db.selectFrom('oauth_apps').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('created_at', 'desc').execute();
    return rows.map(toOAuthAppResponse);
  }

  /** Deleting an app invalidates its tokens at once (every token check looks the app up). */
  async deleteApp(scope: Scope, appId: string, meta: AuditMeta) {
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const deleted = await trx.deleteFrom('oauth_apps').where('tenant_id', '=', scope.tenantId).where('id', '=', appId).returningAll().executeTakeFirst();
      if (!deleted) throw notFound('OAuth app not found');
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'oauth_app.deleted', category: 'security', resourceType: 'oauth_app', resourceId: appId, action: 'delete', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return deleted;
    });
    await this.deps.cache.del(appCacheKey(row.id));
    return toOAuthAppResponse(row);
  }

  // ---------- authorization-code grant

  /**
   * Validates an authorization request for the signed-in user and parks it for 600 s; the user then
   * approves or denies it by id. Client and redirect URI are checked first, so nothing is ever
   * redirected to an unregistered URI.
   */
  async startAuthorization(principal: Principal, req: AuthorizeRequest) {
    const app = await this.deps.db.selectFrom('oauth_apps').selectAll().where('client_id', '=', req.client_id).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
    if (!app) throw oauthError('invalid_client', 'Unknown client_id for this organization', 400);
    if (!app.redirect_uris.includes(req.redirect_uri)) throw oauthError('invalid_request', 'redirect_uri does not exactly match a registered redirect URI');
    if (req.response_type !== 'code') throw oauthError('unsupported_response_type', 'Only response_type=code is supported');
    if (req.code_challenge_method !== 'S256') throw oauthError('invalid_request', 'code_challenge_method must be S256');
    if (!CHALLENGE.test(req.code_challenge)) throw oauthError('invalid_request', 'code_challenge must be the base64url SHA-256 of a 43-128 character verifier');
    const requested = parseScope(req.scope);
    const scopes = requested.length ? requested : app.scopes;
    const unknown = scopes.filter((s) => !app.scopes.includes(s));
    if (unknown.length) throw oauthError('invalid_scope', `Scope not allowed for this app: ${unknown.join(' ')}`);
    const delegable = DELEGABLE[principal.role] ?? [];
    const granted = scopes.filter((s) => delegable.includes(s));
    const requestId = `oar_${randomToken(24)}`;
    const pending: PendingAuthorization = {
      appId: app.id, tenantId: app.tenant_id, userId: principal.accountId!, redirectUri: req.redirect_uri, state: req.state ?? null, scopes: granted, codeChallenge: req.code_challenge,
    };
    await this.deps.cache.set(pendingKey(requestId), pending, PENDING_AUTHORIZATION_TTL_SECONDS);
    return {
      request_id: requestId, client_id: app.client_id, client_name: app.name, redirect_uri: req.redirect_uri, state: req.state ?? null,
      scope: granted.join(' '), withheld_scope: scopes.filter((s) => !granted.includes(s)).join(' '), expires_in: PENDING_AUTHORIZATION_TTL_SECONDS,
    };
  }

  /** The user's decision on a parked request: a redirect URL carrying `code` (or `error=access_denied`) and `state`. */
  async decide(principal: Principal, requestId: string, approve: boolean, meta: AuditMeta): Promise<{ redirectTo: string }> {
    const key = pendingKey(requestId);
    const pending = await this.deps.cache.get<PendingAuthorization>(key);
    if (!pending || pending.tenantId !== principal.tenantId || pending.userId !== principal.accountId) {
      throw new AppError('NOT_FOUND', 404, 'Authorization request not found or expired');
    }
    await this.deps.cache.del(key);
    const target = new URL(pending.redirectUri);
    if (pending.state !== null) target.searchParams.set('state', pending.state);
    if (!approve) {
      await writeAudit(this.deps.db, { ...auditBase(meta), tenantId: pending.tenantId, userId: pending.userId, principal: principalLabel(principal), eventType: 'oauth.denied', category: 'security', resourceType: 'oauth_app', resourceId: pending.appId, action: 'deny', status: 'success', statusCode: 302 });
      meta.audit.written = true;
      target.searchParams.set('error', 'access_denied');
      return { redirectTo: target.toString() };
    }
    const code = randomToken(32);
    await this.deps.db.transaction().execute(async (trx) => {
      await trx.insertInto('oauth_codes').values({
        code_hash: sha256Hex(code), tenant_id: pending.tenantId, app_id: pending.appId, user_id: pending.userId, redirect_uri: pending.redirectUri,
        scopes: JSON.stringify(pending.scopes), code_challenge: pending.codeChallenge, expires_at: new Date(this.deps.clock.now().getTime() + CODE_TTL_SECONDS * 1000),
      }).execute();
      await writeAudit(trx, { ...auditBase(meta), tenantId: pending.tenantId, userId: pending.userId, principal: principalLabel(principal), eventType: 'oauth.authorized', category: 'security', resourceType: 'oauth_app', resourceId: pending.appId, action: 'authorize', status: 'success', statusCode: 302, payload: { scopes: pending.scopes } });
      meta.audit.written = true;
    });
    target.searchParams.set('code', code);
    return { redirectTo: target.toString() };
  }

  // ---------- token endpoint

  /** `POST /oauth/token`: client authentication (Basic or body), then the grant. */
  async token(req: TokenRequest, basic: { clientId: string; clientSecret: string } | undefined, meta: AuditMeta): Promise<TokenResponse> {
    if (basic && req.client_id && req.client_id !== basic.clientId) throw oauthError('invalid_request', 'client_id differs from the Basic credentials');
    const clientId = basic?.clientId ?? req.client_id;
    const secret = basic?.clientSecret ?? req.client_secret;
    if (!clientId) throw oauthError('invalid_client', 'Client authentication required', 401);
    const app = await this.deps.db.selectFrom('oauth_apps').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    if (!app) throw oauthError('invalid_client', 'Unknown client', 401);
    if (app.client_type === 'confidential' || secret !== undefined) {
      if (!app.client_secret_hash || !secret || !safeEqual(sha256Hex(secret), app.client_secret_hash)) throw oauthError('invalid_client', 'Client authentication failed', 401);
    }

    let scopes: string[];
    let userId: number | null = null;
    let userPublicId: string | null = null;
    if (req.grant_type === 'authorization_code') {
      if (!req.code || !req.redirect_uri || !req.code_verifier) throw oauthError('invalid_request', 'code, redirect_uri and code_verifier are required');
      if (!VERIFIER.test(req.code_verifier)) throw oauthError('invalid_grant', 'code_verifier must be 43-128 characters of [A-Za-z0-9-._~]');
      // The code is spent by this attempt whatever its outcome: one guess per code.
      const code = await this.deps.db.updateTable('oauth_codes').set({ used_at: this.deps.clock.now() }).where('code_hash', '=', sha256Hex(req.code)).where('used_at', 'is', null).returningAll().executeTakeFirst();
      if (!code) throw oauthError('invalid_grant', 'Authorization code is invalid or was already used');
      if (code.app_id !== app.id) throw oauthError('invalid_grant', 'Authorization code was issued to another client');
      if (new Date(code.expires_at) <= this.deps.clock.now()) throw oauthError('invalid_grant', 'Authorization code expired');
      if (code.redirect_uri !== req.redirect_uri) throw oauthError('invalid_grant', 'redirect_uri does not match the authorization request');
      if (!safeEqual(s256(req.code_verifier), code.code_challenge)) throw oauthError('invalid_grant', 'code_verifier does not match the code_challenge');
      scopes = code.scopes;
      userId = code.user_id;
      const user = await this.deps.db.selectFrom('users').select('public_id').where('id', '=', code.user_id).where('tenant_id', '=', code.tenant_id).executeTakeFirst();
      if (!user) throw oauthError('invalid_grant', 'The approving account no longer exists');
      userPublicId = user.public_id;
    } else if (req.grant_type === 'client_credentials') {
      if (app.client_type !== 'confidential') throw oauthError('unauthorized_client', 'client_credentials is for confidential clients only');
      const requested = parseScope(req.scope);
      const unknown = requested.filter((s) => !app.scopes.includes(s));
      if (unknown.length) throw oauthError('invalid_scope', `Scope not allowed for this app: ${unknown.join(' ')}`);
      scopes = requested.length ? requested : app.scopes;
    } else {
      throw oauthError('unsupported_grant_type', 'grant_type must be authorization_code or client_credentials');
    }

    const accessToken = await new SignJWT({ typ: 'oauth', tid: app.tenant_id, cid: app.id, scope: scopes.join(' '), ...(userPublicId ? { uid: userPublicId } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(app.client_id)
      .setIssuer(this.deps.issuer)
      .setAudience('memorysync-api')
      .setJti(randomToken(12))
      .setIssuedAt()
      .setExpirationTime(`${this.deps.accessTokenTtlSeconds}s`)
      .sign(this.key);
    await writeAudit(this.deps.db, { ...auditBase(meta), tenantId: app.tenant_id, userId, principal: `oauth:${app.client_id}`, eventType: 'oauth.token_issued', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: req.grant_type, status: 'success', statusCode: 200, payload: { scopes } });
    meta.audit.written = true;
    return { access_token: accessToken, token_type: 'Bearer', expires_in: this.deps.accessTokenTtlSeconds, scope: scopes.join(' ') };
  }

  // ---------- bearer tokens → principal

  /** True for JWTs this service issued (by their `typ` claim; the signature is checked in `principalFromToken`). */
  isOAuthToken(token: string): boolean {
    try {
      return decodeJwt(token).typ === 'oauth';
    } catch {
      return false;
    }
  }

  /** An `oauth` principal: the app's tenant, the granted scopes, end users from X-End-User-ID like an API key. */
  async principalFromToken(token: string): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: this.deps.issuer, audience: 'memorysync-api' }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthorized('Token expired', 'TOKEN_EXPIRED');
      throw unauthorized('Invalid token', 'INVALID_TOKEN');
    }
    if (payload.typ !== 'oauth' || typeof payload.tid !== 'string' || typeof payload.cid !== 'string' || typeof payload.scope !== 'string') throw unauthorized('Invalid token', 'INVALID_TOKEN');
    const app = await this.liveApp(payload.cid, payload.tid);
    if (!app) throw unauthorized('The OAuth app of this token no longer exists', 'INVALID_TOKEN');
    return {
      // uid: the account that approved an authorization-code grant (absent for client credentials)
      kind: 'oauth', tenantId: app.tenantId, accountId: app.createdBy, accountPublicId: typeof payload.uid === 'string' ? payload.uid : null, apiKeyId: null,
      role: 'member', scopes: parseScope(payload.scope), projectLock: null, environment: 'production', rateLimitTier: 'pro', platformAdmin: false,
    };
  }

  private async liveApp(appId: string, tenantId: string): Promise<{ tenantId: string; createdBy: number | null } | undefined> {
    const key = appCacheKey(appId);
    const cached = await this.deps.cache.get<{ tenantId: string; createdBy: number | null }>(key);
    if (cached) return cached.tenantId === tenantId ? cached : undefined;
    const row = await this.deps.db
      .selectFrom('oauth_apps as a')
      .innerJoin('tenants as t', 't.id', 'a.tenant_id')
      .select(['a.tenant_id', 'a.created_by', 't.status'])
      .where('a.id', '=', appId)
      .where('a.tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (!row || row.status !== 'active') return undefined;
    const live = { tenantId: row.tenant_id, createdBy: row.created_by };
    await this.deps.cache.set(key, live, Math.min(60, this.deps.cacheTtlSeconds));
    return live;
  }
}

const pendingKey = (requestId: string) => `oauth:pending:${requestId}`;
const appCacheKey = (appId: string) => `oauth:app:${appId}`;

/** Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-urlencoded id and secret). */
export function basicClientCredentials(authorization: string | undefined): { clientId: string; clientSecret: string } | undefined {
  const m = authorization ? /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) throw oauthError('invalid_client', 'Malformed Basic credentials', 401);
  try {
    return { clientId: decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' ')), clientSecret: decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' ')) };
  } catch {
    throw oauthError('invalid_client', 'Malformed Basic credentials', 401);
  }
}
