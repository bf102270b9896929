import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt, jwtVerify, errors as joseErrors } from 'jose';
import { sql, type Kysely, type Selectable } from 'kysely';
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
  /** lifetime of one refresh token; each use rotates it */
  refreshTokenTtlSeconds: number;
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
  refresh_token?: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

/** Introspection (RFC 7662) and revocation (RFC 7009) requests; the hint is only a hint. */
export interface TokenLookupRequest {
  token: string;
  token_type_hint?: string;
  client_id?: string;
  client_secret?: string;
}

type BasicCredentials = { clientId: string; clientSecret: string } | undefined;

/** What a presented token turned out to be, for introspection and revocation. */
type FoundToken =
  | { kind: 'access'; jti: string; appId: string; tenantId: string; scope: string; sub: string; exp: number; iat: number; familyId: string | null; active: boolean }
  | { kind: 'refresh'; tokenHash: string; familyId: string; appId: string; tenantId: string; scope: string; sub: string; exp: number; iat: number; active: boolean };

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
  async token(req: TokenRequest, basic: BasicCredentials, meta: AuditMeta): Promise<TokenResponse> {
    const app = await this.authenticateClient(req, basic);
    if (req.grant_type === 'refresh_token') return this.refresh(app, req, meta);

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
      throw oauthError('unsupported_grant_type', 'grant_type must be authorization_code, refresh_token or client_credentials');
    }

    // A user's grant (authorization code) also gets a refresh token, the first of a new family; client credentials do not (RFC 6749 §4.4.3).
    return this.deps.db.transaction().execute(async (trx) => {
      let refreshToken: string | undefined;
      let familyId: string | null = null;
      if (userId !== null) {
        familyId = `otf_${randomBytes(12).toString('hex')}`;
        await trx.insertInto('oauth_token_families').values({ id: familyId, tenant_id: app.tenant_id, app_id: app.id, user_id: userId, scopes: JSON.stringify(scopes), revoked_at: null, revoked_reason: null }).execute();
        refreshToken = await this.issueRefreshToken(trx, familyId, app.tenant_id, scopes);
      }
      const accessToken = await this.signAccessToken(app, scopes, userPublicId, familyId);
      await writeAudit(trx, { ...auditBase(meta), tenantId: app.tenant_id, userId, principal: `oauth:${app.client_id}`, eventType: 'oauth.token_issued', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: req.grant_type, status: 'success', statusCode: 200, payload: { scopes, ...(familyId ? { family_id: familyId } : {}) } });
      meta.audit.written = true;
      return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: this.deps.accessTokenTtlSeconds, scope: scopes.join(' '), ...(refreshToken ? { refresh_token: refreshToken } : {}) };
    });
  }

  /**
   * `grant_type=refresh_token`: the presented token is spent (rotation) and a new one of the same family
   * comes back with a new access token. A token presented a second time means two parties hold it:
   * the whole family is revoked — every refresh token and every access token it issued — and the
   * attempt is audited (RFC 9700 §4.14.2). Scopes may narrow, never widen, and are capped again by what
   * the approving account's current role may delegate.
   */
  private async refresh(app: AppRow, req: TokenRequest, meta: AuditMeta): Promise<TokenResponse> {
    if (!req.refresh_token) throw oauthError('invalid_request', 'refresh_token is required');
    const hash = sha256Hex(req.refresh_token);
    const row = await this.deps.db
      .selectFrom('oauth_refresh_tokens as r')
      .innerJoin('oauth_token_families as f', 'f.id', 'r.family_id')
      .select(['r.token_hash', 'r.expires_at', 'r.used_at', 'r.scopes', 'f.id as family_id', 'f.app_id', 'f.tenant_id', 'f.user_id', 'f.revoked_at'])
      .where('r.token_hash', '=', hash)
      .executeTakeFirst();
    // Another client's token is not this client's business: same answer as an unknown token, nothing changes.
    if (!row || row.app_id !== app.id) throw oauthError('invalid_grant', 'Refresh token is invalid');
    if (row.revoked_at) throw oauthError('invalid_grant', 'Refresh token was revoked');
    const spent = await this.deps.db.updateTable('oauth_refresh_tokens').set({ used_at: this.deps.clock.now() }).where('token_hash', '=', hash).where('used_at', 'is', null).returning('token_hash').executeTakeFirst();
    if (!spent) {
      await this.revokeFamily(row.family_id, row.tenant_id, 'refresh_token_reuse');
      await writeAudit(this.deps.db, { ...auditBase(meta), tenantId: row.tenant_id, userId: row.user_id, principal: `oauth:${app.client_id}`, eventType: 'oauth.refresh_token_reused', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: 'refresh_token', status: 'failure', statusCode: 400, payload: { family_id: row.family_id } });
      meta.audit.written = true;
      throw oauthError('invalid_grant', 'Refresh token was already used; the grant is revoked');
    }
    if (new Date(row.expires_at) <= this.deps.clock.now()) throw oauthError('invalid_grant', 'Refresh token expired');
    const user = await this.deps.db.selectFrom('users').select(['public_id', 'role']).where('id', '=', row.user_id).where('tenant_id', '=', row.tenant_id).executeTakeFirst();
    if (!user) throw oauthError('invalid_grant', 'The approving account no longer exists');
    const scim = await this.deps.db.selectFrom('scim_users').select('active').where('user_id', '=', row.user_id).executeTakeFirst();
    if (scim && !scim.active) throw oauthError('invalid_grant', 'The approving account is deactivated');
    const requested = parseScope(req.scope);
    const wider = requested.filter((s) => !row.scopes.includes(s));
    if (wider.length) throw oauthError('invalid_scope', `Scope exceeds the original grant: ${wider.join(' ')}`);
    const delegable = DELEGABLE[user.role as Role] ?? [];
    const familyScopes = row.scopes.filter((s) => delegable.includes(s) && app.scopes.includes(s));
    const scopes = (requested.length ? requested : row.scopes).filter((s) => familyScopes.includes(s));
    return this.deps.db.transaction().execute(async (trx) => {
      const refreshToken = await this.issueRefreshToken(trx, row.family_id, row.tenant_id, familyScopes);
      const accessToken = await this.signAccessToken(app, scopes, user.public_id, row.family_id);
      await writeAudit(trx, { ...auditBase(meta), tenantId: row.tenant_id, userId: row.user_id, principal: `oauth:${app.client_id}`, eventType: 'oauth.token_refreshed', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: 'refresh_token', status: 'success', statusCode: 200, payload: { scopes, family_id: row.family_id } });
      meta.audit.written = true;
      return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: this.deps.accessTokenTtlSeconds, scope: scopes.join(' '), refresh_token: refreshToken };
    });
  }

  // ---------- introspection (RFC 7662) and revocation (RFC 7009)

  /**
   * `POST /oauth/introspect`: the authenticated client learns whether a token *it* was issued is active.
   * Anything else — unknown, expired, revoked, another client's — is `{active: false}` and nothing more.
   */
  async introspect(req: TokenLookupRequest, basic: BasicCredentials, meta: AuditMeta): Promise<Record<string, unknown>> {
    const app = await this.authenticateClient(req, basic);
    const found = await this.findToken(req.token, req.token_type_hint);
    const active = found !== undefined && found.appId === app.id && found.active;
    await writeAudit(this.deps.db, { ...auditBase(meta), tenantId: app.tenant_id, userId: null, principal: `oauth:${app.client_id}`, eventType: 'oauth.token_introspected', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: 'introspect', status: 'success', statusCode: 200, payload: { active, token_type: active ? found.kind : null } });
    meta.audit.written = true;
    if (!active) return { active: false };
    return {
      active: true, scope: found.scope, client_id: app.client_id, sub: found.sub, token_type: found.kind === 'access' ? 'Bearer' : 'refresh_token',
      exp: found.exp, iat: found.iat, iss: this.deps.issuer, ...(found.kind === 'access' ? { aud: 'memorysync-api', jti: found.jti } : {}),
    };
  }

  /**
   * `POST /oauth/revoke`: a refresh token revokes its whole grant (the family, with the access tokens it
   * issued); an access token is revoked alone until it expires. Unknown tokens and other clients' tokens
   * are answered the same 200 without any change (RFC 7009 §2.2), so the endpoint is no token oracle.
   */
  async revoke(req: TokenLookupRequest, basic: BasicCredentials, meta: AuditMeta): Promise<void> {
    const app = await this.authenticateClient(req, basic);
    const found = await this.findToken(req.token, req.token_type_hint);
    const mine = found !== undefined && found.appId === app.id;
    if (mine && found.kind === 'refresh') await this.revokeFamily(found.familyId, found.tenantId, 'revoked_by_client');
    if (mine && found.kind === 'access') {
      await this.deps.db.insertInto('oauth_revoked_tokens').values({ jti: found.jti, tenant_id: found.tenantId, app_id: app.id, expires_at: new Date(found.exp * 1000) })
        .onConflict((oc) => oc.column('jti').doNothing()).execute();
    }
    await writeAudit(this.deps.db, { ...auditBase(meta), tenantId: app.tenant_id, userId: null, principal: `oauth:${app.client_id}`, eventType: 'oauth.token_revoked', category: 'security', resourceType: 'oauth_app', resourceId: app.id, action: 'revoke', status: 'success', statusCode: 200, payload: { revoked: mine ? found.kind : null, ...(mine && found.familyId ? { family_id: found.familyId } : {}) } });
    meta.audit.written = true;
  }

  // ---------- internals of the token endpoints

  /** RFC 6749 §2.3: `client_secret_basic` or `client_secret_post` for confidential clients; a public client names itself. */
  private async authenticateClient(req: { client_id?: string; client_secret?: string }, basic: BasicCredentials): Promise<AppRow> {
    if (basic && req.client_id && req.client_id !== basic.clientId) throw oauthError('invalid_request', 'client_id differs from the Basic credentials');
    if (basic && req.client_secret !== undefined) throw oauthError('invalid_request', 'Use one client authentication method, not two');
    const clientId = basic?.clientId ?? req.client_id;
    const secret = basic?.clientSecret ?? req.client_secret;
    if (!clientId) throw oauthError('invalid_client', 'Client authentication required', 401);
    const app = await this.deps.db.selectFrom('oauth_apps').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    if (!app) throw oauthError('invalid_client', 'Unknown client', 401);
    if (app.client_type === 'confidential' || secret !== undefined) {
      if (!app.client_secret_hash || !secret || !safeEqual(sha256Hex(secret), app.client_secret_hash)) throw oauthError('invalid_client', 'Client authentication failed', 401);
    }
    return app;
  }

  private signAccessToken(app: AppRow, scopes: string[], userPublicId: string | null, familyId: string | null): Promise<string> {
    return new SignJWT({ typ: 'oauth', tid: app.tenant_id, cid: app.id, scope: scopes.join(' '), ...(userPublicId ? { uid: userPublicId } : {}), ...(familyId ? { fid: familyId } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(app.client_id)
      .setIssuer(this.deps.issuer)
      .setAudience('memorysync-api')
      .setJti(randomToken(12))
      .setIssuedAt()
      .setExpirationTime(`${this.deps.accessTokenTtlSeconds}s`)
      .sign(this.key);
  }

  private async issueRefreshToken(trx: Kysely<Database>, familyId: string, tenantId: string, scopes: string[]): Promise<string> {
    const token = `msrt_${randomToken(32)}`;
    await trx.insertInto('oauth_refresh_tokens').values({
      token_hash: sha256Hex(token), family_id: familyId, tenant_id: tenantId, scopes: JSON.stringify(scopes),
      expires_at: new Date(this.deps.clock.now().getTime() + this.deps.refreshTokenTtlSeconds * 1000), used_at: null,
    }).execute();
    return token;
  }

  private async revokeFamily(familyId: string, tenantId: string, reason: string): Promise<void> {
    await this.deps.db.updateTable('oauth_token_families').set({ revoked_at: this.deps.clock.now(), revoked_reason: reason })
      .where('id', '=', familyId).where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).execute();
  }

  /** An access token (a JWT of ours with a valid signature) or a refresh token (by its hash), whatever the hint says. */
  private async findToken(token: string, hint: string | undefined): Promise<FoundToken | undefined> {
    const asAccess = async (): Promise<FoundToken | undefined> => {
      if (!this.isOAuthToken(token)) return undefined;
      let payload;
      try {
        ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: this.deps.issuer, audience: 'memorysync-api' }));
      } catch {
        return undefined;
      }
      if (typeof payload.jti !== 'string' || typeof payload.cid !== 'string' || typeof payload.tid !== 'string') return undefined;
      const familyId = typeof payload.fid === 'string' ? payload.fid : null;
      const active = !(await this.isRevoked(payload.jti, familyId));
      return {
        kind: 'access', jti: payload.jti, appId: payload.cid, tenantId: payload.tid, scope: String(payload.scope ?? ''), sub: typeof payload.uid === 'string' ? payload.uid : String(payload.sub),
        exp: payload.exp!, iat: payload.iat!, familyId, active,
      };
    };
    const asRefresh = async (): Promise<FoundToken | undefined> => {
      const row = await this.deps.db
        .selectFrom('oauth_refresh_tokens as r')
        .innerJoin('oauth_token_families as f', 'f.id', 'r.family_id')
        .innerJoin('users as u', 'u.id', 'f.user_id')
        .select(['r.token_hash', 'r.expires_at', 'r.used_at', 'r.created_at', 'r.scopes', 'f.id as family_id', 'f.app_id', 'f.tenant_id', 'f.revoked_at', 'u.public_id'])
        .where('r.token_hash', '=', sha256Hex(token))
        .executeTakeFirst();
      if (!row) return undefined;
      const active = !row.used_at && !row.revoked_at && new Date(row.expires_at) > this.deps.clock.now();
      return {
        kind: 'refresh', tokenHash: row.token_hash, familyId: row.family_id, appId: row.app_id, tenantId: row.tenant_id, scope: row.scopes.join(' '), sub: row.public_id,
        exp: Math.floor(new Date(row.expires_at).getTime() / 1000), iat: Math.floor(new Date(row.created_at).getTime() / 1000), active,
      };
    };
    const order = hint === 'refresh_token' ? [asRefresh, asAccess] : [asAccess, asRefresh];
    for (const attempt of order) {
      const found = await attempt();
      if (found) return found;
    }
    return undefined;
  }

  /** An access token revoked by itself (RFC 7009) or through its grant's family. */
  private async isRevoked(jti: string, familyId: string | null): Promise<boolean> {
    const { rows } = await sql<{ revoked: boolean }>`select (exists (select 1 from oauth_revoked_tokens where jti = ${jti})
      or exists (select 1 from oauth_token_families where id = ${familyId} and revoked_at is not null)) as revoked`.execute(this.deps.db);
    return Boolean(rows[0]?.revoked);
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
    // One indexed lookup per request: a revoked token (RFC 7009) or a revoked grant stops at once.
    if (typeof payload.jti === 'string' && (await this.isRevoked(payload.jti, typeof payload.fid === 'string' ? payload.fid : null))) {
      throw unauthorized('Token revoked', 'TOKEN_REVOKED');
    }
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
