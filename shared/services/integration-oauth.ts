import { createHash } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, IntegrationConnectionsTable } from '../db/schema.ts';
import { openText, seal } from '../crypto/aead.ts';
import { randomToken, sha256Hex } from '../crypto/hashing.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { AppError } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { tokenAad } from '../integrations/sync-engine.ts';
import type { Provider } from '../integrations/types.ts';

/** How long a connect started at the provider's authorization page waits for its callback. */
export const INTEGRATION_STATE_TTL_SECONDS = 600;
/** An access token this close to its expiry is refreshed before a sync. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const FETCH_TIMEOUT_MS = 10_000;

/** One provider's OAuth client (from configuration) and the quirks of its authorization server. */
export interface ProviderOAuthClient {
  clientId?: string;
  clientSecret?: string;
  authorizeUrl: string;
  tokenUrl: string;
}

interface ProviderProfile {
  scope: string | null;
  /** PKCE S256 is sent where the provider documents it */
  pkce: boolean;
  /** how the client authenticates at the token endpoint, and how the request is encoded */
  auth: 'basic' | 'post';
  encoding: 'form' | 'json';
  authorizeParams: Record<string, string>;
}

/**
 * Per provider, from its OAuth documentation: GitHub (OAuth apps; form, `Accept: application/json`,
 * errors may come with HTTP 200), Notion (public integrations; JSON body, HTTP Basic, `owner=user`, no
 * PKCE), Google (`access_type=offline` + `prompt=consent` for a refresh token), Microsoft identity
 * platform v2 (`offline_access` for a refresh token, which it rotates).
 */
const PROFILES: Record<Provider, ProviderProfile> = {
  github: { scope: 'repo read:user', pkce: true, auth: 'post', encoding: 'form', authorizeParams: {} },
  notion: { scope: null, pkce: false, auth: 'basic', encoding: 'json', authorizeParams: { owner: 'user' } },
  google_drive: { scope: 'https://www.googleapis.com/auth/drive.readonly', pkce: true, auth: 'post', encoding: 'form', authorizeParams: { access_type: 'offline', prompt: 'consent', include_granted_scopes: 'true' } },
  onedrive: { scope: 'offline_access Files.Read.All User.Read', pkce: true, auth: 'post', encoding: 'form', authorizeParams: { response_mode: 'query' } },
};

export interface IntegrationOAuthDeps {
  db: Kysely<Database>;
  clock: Clock;
  tenantKeys: TenantKeyService;
  clients: Record<Provider, ProviderOAuthClient>;
}

export interface ExchangedTokens {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: Date | null;
}

type ConnectionRow = Selectable<IntegrationConnectionsTable>;

export const refreshTokenAad = (tenantId: string, connectionId: string) => `integration-refresh-token:${tenantId}:${connectionId}`;
const verifierAad = (tenantId: string, stateHash: string) => `integration-pkce:${tenantId}:${stateHash}`;

/** The provider refused (bad code, revoked grant): a 400 the caller can act on, with the provider's own error code. */
export class ProviderGrantError extends AppError {
  constructor(provider: Provider, readonly oauthError: string, description: string | undefined) {
    super('INTEGRATION_AUTH_FAILED', 400, `${provider} refused the authorization: ${oauthError}${description ? ` (${description.slice(0, 200)})` : ''}`);
  }
}

/**
 * The authorization-code side of integrations: the provider's authorization URL with state (+ PKCE),
 * the code exchange at its token endpoint, and refreshing an expiring access token before a sync.
 */
export class IntegrationOAuth {
  constructor(private readonly deps: IntegrationOAuthDeps) {}

  configured(provider: Provider): boolean {
    const c = this.deps.clients[provider];
    return Boolean(c.clientId && c.clientSecret);
  }

  /** Parks a connect request (single use, 600 s) and builds the provider's authorization URL for it. */
  async start(input: {
    tenantId: string; provider: Provider; projectId: string; endUserId: string; environment: string; options: Record<string, unknown>;
    redirectUri: string; createdBy: string; createdByAccount: number | null;
  }): Promise<{ authorization_url: string; state: string; expires_in: number }> {
    const { provider } = input;
    const client = this.deps.clients[provider];
    if (!this.configured(provider)) throw new AppError('INTEGRATION_OAUTH_NOT_CONFIGURED', 422, `No OAuth client is configured for ${provider}: set INTEGRATION_${provider.toUpperCase()}_CLIENT_ID and _CLIENT_SECRET, or connect with an access_token`);
    const profile = PROFILES[provider];
    const state = randomToken(24);
    const stateHash = sha256Hex(state);
    const verifier = profile.pkce ? randomToken(48) : null;
    const keys = await this.deps.tenantKeys.forTenant(input.tenantId);
    await this.deps.db.insertInto('integration_oauth_states').values({
      state_hash: stateHash, tenant_id: input.tenantId, provider, project_id: input.projectId, end_user_id: input.endUserId, environment: input.environment,
      options: JSON.stringify(input.options), redirect_uri: input.redirectUri, verifier_ciphertext: verifier ? seal(keys.dataKey, verifier, verifierAad(input.tenantId, stateHash)) : null,
      created_by: input.createdBy, created_by_account: input.createdByAccount, expires_at: new Date(this.deps.clock.now().getTime() + INTEGRATION_STATE_TTL_SECONDS * 1000), used_at: null,
    }).execute();
    const url = new URL(client.authorizeUrl);
    const params: Record<string, string> = { ...Object.fromEntries(url.searchParams), client_id: client.clientId!, redirect_uri: input.redirectUri, response_type: 'code', state, ...profile.authorizeParams };
    if (profile.scope) params.scope = profile.scope;
    if (verifier) Object.assign(params, { code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' });
    url.search = new URLSearchParams(params).toString();
    return { authorization_url: url.toString(), state, expires_in: INTEGRATION_STATE_TTL_SECONDS };
  }

  /** Spends a state (once, unexpired, of this provider) and answers what the connect asked for. */
  async takeState(provider: Provider, state: string) {
    const stateHash = sha256Hex(state);
    const row = await this.deps.db.updateTable('integration_oauth_states').set({ used_at: this.deps.clock.now() })
      .where('state_hash', '=', stateHash).where('used_at', 'is', null).returningAll().executeTakeFirst();
    if (!row || row.provider !== provider || new Date(row.expires_at) <= this.deps.clock.now()) {
      throw new AppError('INTEGRATION_STATE_INVALID', 400, 'Unknown, expired or already used authorization state');
    }
    const keys = await this.deps.tenantKeys.forTenant(row.tenant_id);
    const verifier = row.verifier_ciphertext ? openText(keys.dataKey, row.verifier_ciphertext, verifierAad(row.tenant_id, stateHash)) : null;
    return { ...row, verifier };
  }

  /** The authorization code for tokens at the provider's token endpoint. */
  exchangeCode(provider: Provider, code: string, redirectUri: string, verifier: string | null): Promise<ExchangedTokens> {
    return this.tokenRequest(provider, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, ...(verifier ? { code_verifier: verifier } : {}) });
  }

  /**
   * Before a sync: an OAuth connection whose access token expires within 5 minutes gets a new one with
   * its refresh token (stored sealed again, with the new refresh token when the provider rotates it).
   * Answers the connection as it now is; a refused refresh throws ProviderGrantError.
   */
  async ensureFresh(conn: ConnectionRow): Promise<void> {
    if (conn.auth_method !== 'oauth' || !conn.refresh_token_ciphertext || !conn.token_expires_at) return;
    if (new Date(conn.token_expires_at).getTime() - this.deps.clock.now().getTime() > REFRESH_MARGIN_MS) return;
    const provider = conn.provider as Provider;
    const keys = await this.deps.tenantKeys.forTenant(conn.tenant_id);
    const refreshToken = openText(keys.dataKey, conn.refresh_token_ciphertext, refreshTokenAad(conn.tenant_id, conn.id));
    const fresh = await this.tokenRequest(provider, { grant_type: 'refresh_token', refresh_token: refreshToken });
    // Compare-and-set on the old expiry: when two runs refresh at once, the first write wins and both tokens are valid at the provider.
    await this.deps.db.updateTable('integration_connections').set({
      token_ciphertext: seal(keys.dataKey, fresh.accessToken, tokenAad(conn.tenant_id, conn.id)),
      ...(fresh.refreshToken ? { refresh_token_ciphertext: seal(keys.dataKey, fresh.refreshToken, refreshTokenAad(conn.tenant_id, conn.id)) } : {}),
      token_expires_at: fresh.expiresAt, updated_at: this.deps.clock.now(),
    }).where('tenant_id', '=', conn.tenant_id).where('id', '=', conn.id).where('token_expires_at', '=', conn.token_expires_at).execute();
  }

  private async tokenRequest(provider: Provider, params: Record<string, string>): Promise<ExchangedTokens> {
    const client = this.deps.clients[provider];
    if (!client.clientId || !client.clientSecret) throw new AppError('INTEGRATION_OAUTH_NOT_CONFIGURED', 422, `No OAuth client is configured for ${provider}`);
    const profile = PROFILES[provider];
    const headers: Record<string, string> = { accept: 'application/json' };
    const fields: Record<string, string> = { ...params };
    if (profile.auth === 'basic') headers.authorization = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
    else Object.assign(fields, { client_id: client.clientId, client_secret: client.clientSecret });
    if (provider === 'onedrive' && profile.scope) fields.scope = profile.scope;
    headers['content-type'] = profile.encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
    let res: Response;
    try {
      res = await fetch(client.tokenUrl, {
        method: 'POST', headers, redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        body: profile.encoding === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
      });
    } catch {
      throw new AppError('INTEGRATION_PROVIDER_UNAVAILABLE', 502, `${provider}'s token endpoint could not be reached`);
    }
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    // GitHub answers some errors with HTTP 200 and an `error` field.
    if (typeof body.error === 'string') {
      if (res.status >= 500) throw new AppError('INTEGRATION_PROVIDER_UNAVAILABLE', 502, `${provider}'s token endpoint failed (${res.status})`);
      throw new ProviderGrantError(provider, body.error, typeof body.error_description === 'string' ? body.error_description : undefined);
    }
    if (!res.ok) {
      if (res.status >= 500 || res.status === 429) throw new AppError('INTEGRATION_PROVIDER_UNAVAILABLE', 502, `${provider}'s token endpoint failed (${res.status})`);
      throw new ProviderGrantError(provider, `http_${res.status}`, undefined);
    }
    if (typeof body.access_token !== 'string' || !body.access_token) throw new AppError('INTEGRATION_PROVIDER_UNAVAILABLE', 502, `${provider}'s token endpoint answered no access_token`);
    const expiresIn = Number(body.expires_in);
    return {
      accessToken: body.access_token,
      refreshToken: typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : null,
      expiresAt: Number.isFinite(expiresIn) && expiresIn > 0 ? new Date(this.deps.clock.now().getTime() + expiresIn * 1000) : null,
    };
  }
}
