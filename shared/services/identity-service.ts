import { sql, type Kysely } from 'kysely';
import type { Database, ProjectRow } from '../db/schema.ts';
import { AppError, conflict, forbidden, notFound, unauthorized } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import { hashPassword, hmacHex, randomToken, sha256Hex, verifyPassword } from '../crypto/hashing.ts';
import type { TenantKeyService } from '../crypto/tenant-keys.ts';
import { writeAudit, type AuditEntry } from './audit.ts';
import { newProjectId, newSessionId, newTenantId, newUserPublicId } from './ids.ts';
import type { OutboxPort } from './memory-service.ts';
import { apiKeyWebhookTask } from './org-events.ts';
import { DEFAULT_KEY_SCOPES, type Principal, type Role, type Scope } from './scope.ts';
import { AccessTokens, type AccessClaims } from './tokens.ts';

export interface IdentityDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  tokens: AccessTokens;
  tenantKeys: TenantKeyService;
  refreshSecret: string;
  refreshTtlDays: number;
  cacheTtlSeconds: number;
  /** accounts with these emails (lower case) are platform operators */
  platformAdminEmails?: readonly string[];
  /** `api_key.created` / `api_key.revoked` webhooks go through it, in the transaction of the change */
  outbox?: OutboxPort;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export interface AuthResult {
  user: { id: string; email: string; full_name: string | null; role: string; tenant_id: string };
  tokens: TokenPair;
  session: { id: string; expires_at: string; session_type: string };
  mfa_required: false;
  mfa_setup_required: false;
}

const ROLE_RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };
export const roleAtLeast = (role: Role, min: Role): boolean => ROLE_RANK[role] >= ROLE_RANK[min];

export const principalKey = (kind: 'session' | 'key', id: string) => `principal:${kind}:${id}`;

export function toProjectResponse(p: ProjectRow) {
  return {
    id: p.id,
    project_id: p.id,
    tenant_id: p.tenant_id,
    name: p.name,
    description: p.description,
    is_default: p.is_default,
    memory_count: p.memory_count,
    created_at: new Date(p.created_at).toISOString(),
    updated_at: new Date(p.updated_at).toISOString(),
  };
}

/**
 * Tenants, accounts, sessions, API keys and projects: everything that turns a credential into a
 * Principal, and the org routes that manage them.
 */
export class IdentityService {
  constructor(private readonly deps: IdentityDeps) {}

  // ---------- tenants and accounts

  /** Creates a tenant with its data key and default project. */
  async createTenant(name: string, trx: Kysely<Database> = this.deps.db): Promise<{ tenantId: string; projectId: string }> {
    const tenantId = newTenantId();
    const wrapped = await this.deps.tenantKeys.provision(tenantId);
    await trx.insertInto('tenants').values({ id: tenantId, name, data_key_wrapped: wrapped }).execute();
    const projectId = newProjectId();
    await trx.insertInto('projects').values({ id: projectId, tenant_id: tenantId, name: 'Default', is_default: true, description: null }).execute();
    return { tenantId, projectId };
  }

  async signup(input: { email: string; password: string; organization_name?: string; full_name?: string }, meta: AuditMeta): Promise<AuthResult> {
    const email = input.email.trim().toLowerCase();
    const passwordHash = await hashPassword(input.password);
    return this.deps.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
      if (existing) throw conflict('An account with this email already exists');
      const { tenantId } = await this.createTenant(input.organization_name?.trim() || `${email.split('@')[0]}'s organization`, trx);
      const user = await trx
        .insertInto('users')
        .values({ public_id: newUserPublicId(), tenant_id: tenantId, kind: 'account', external_id: null, email, password_hash: passwordHash, full_name: input.full_name ?? null, role: 'owner' })
        .returningAll()
        .executeTakeFirstOrThrow();
      const result = await this.issueSession(trx, user, 'web');
      await writeAudit(trx, { ...auditBase(meta), tenantId, userId: user.id, principal: user.public_id, eventType: 'auth.signup', category: 'auth', resourceType: 'user', resourceId: user.public_id, action: 'create', status: 'success', statusCode: 201 });
      meta.audit.written = true;
      return result;
    });
  }

  async login(input: { email: string; password: string; session_type?: string }, meta: AuditMeta): Promise<AuthResult> {
    const email = input.email.trim().toLowerCase();
    const user = await this.deps.db.selectFrom('users').selectAll().where('email', '=', email).where('kind', '=', 'account').executeTakeFirst();
    // Verify against a dummy hash when the user is unknown so timing does not reveal accounts.
    const ok = await verifyPassword(input.password, user?.password_hash ?? DUMMY_HASH);
    if (!user || !ok) throw unauthorized('Invalid email or password', 'INVALID_CREDENTIALS');
    const tenant = await this.deps.db.selectFrom('tenants').select('status').where('id', '=', user.tenant_id).executeTakeFirst();
    if (tenant?.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
    return this.deps.db.transaction().execute(async (trx) => {
      const result = await this.issueSession(trx, user, input.session_type ?? 'web');
      await writeAudit(trx, { ...auditBase(meta), tenantId: user.tenant_id, userId: user.id, principal: user.public_id, eventType: 'auth.login', category: 'auth', resourceType: 'session', resourceId: result.session.id, action: 'login', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return result;
    });
  }

  /** Rotates a refresh token. Reusing an already-rotated token revokes its whole family. */
  async refresh(refreshToken: string): Promise<AuthResult> {
    const hash = hmacHex(this.deps.refreshSecret, refreshToken);
    const now = this.deps.clock.now();
    const outcome = await this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash).forUpdate().executeTakeFirst();
      if (!row || row.revoked_at || new Date(row.expires_at) <= now) throw unauthorized('Invalid refresh token', 'INVALID_TOKEN');
      if (row.used_at) {
        // Returned, not thrown: a throw here would roll the family revocation back.
        await trx.updateTable('refresh_tokens').set({ revoked_at: now }).where('family_id', '=', row.family_id).where('revoked_at', 'is', null).execute();
        return { reusedSessionId: row.session_id };
      }
      await trx.updateTable('refresh_tokens').set({ used_at: now }).where('id', '=', row.id).execute();
      const user = await trx.selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirstOrThrow();
      return this.issueSession(trx, user, row.session_type, { sessionId: row.session_id, familyId: row.family_id, expiresAt: new Date(row.expires_at) });
    });
    if ('reusedSessionId' in outcome) {
      await this.deps.cache.del(principalKey('session', outcome.reusedSessionId));
      throw unauthorized('Refresh token reuse detected; session revoked', 'TOKEN_REUSED');
    }
    return outcome;
  }

  async logout(principal: Principal, sessionId: string | null): Promise<void> {
    if (!sessionId) return;
    await this.deps.db.updateTable('refresh_tokens').set({ revoked_at: this.deps.clock.now() }).where('session_id', '=', sessionId).where('tenant_id', '=', principal.tenantId).where('revoked_at', 'is', null).execute();
    await this.deps.cache.del(principalKey('session', sessionId));
  }

  /**
   * Opens a session for an account whose identity another authority has verified (OIDC login): the
   * same AuthResult as `login`, audited by the caller inside its own transaction.
   */
  async openVerifiedSession(trx: Kysely<Database>, userId: number, tenantId: string, sessionType = 'web'): Promise<AuthResult> {
    const user = await trx.selectFrom('users').selectAll().where('id', '=', userId).where('tenant_id', '=', tenantId).where('kind', '=', 'account').executeTakeFirstOrThrow();
    return this.issueSession(trx, user, sessionType);
  }

  private async issueSession(
    trx: Kysely<Database>,
    user: { id: number; public_id: string; tenant_id: string; email: string | null; full_name: string | null; role: string },
    sessionType: string,
    continuing?: { sessionId: string; familyId: string; expiresAt: Date },
  ): Promise<AuthResult> {
    const sessionId = continuing?.sessionId ?? newSessionId();
    const familyId = continuing?.familyId ?? randomToken(12);
    // Absolute expiry: rotation never extends a family past its first token's lifetime.
    const expiresAt = continuing?.expiresAt ?? new Date(this.deps.clock.now().getTime() + this.deps.refreshTtlDays * 86_400_000);
    const refreshToken = `msr_${randomToken(32)}`;
    await trx.insertInto('refresh_tokens').values({ session_id: sessionId, family_id: familyId, user_id: user.id, tenant_id: user.tenant_id, token_hash: hmacHex(this.deps.refreshSecret, refreshToken), session_type: sessionType, expires_at: expiresAt }).execute();
    const accessToken = await this.deps.tokens.sign({ sub: user.public_id, tid: user.tenant_id, sid: sessionId, role: user.role as Role });
    return {
      user: { id: user.public_id, email: user.email ?? '', full_name: user.full_name, role: user.role, tenant_id: user.tenant_id },
      tokens: { access_token: accessToken, refresh_token: refreshToken, token_type: 'bearer', expires_in: this.deps.tokens.ttlSeconds },
      session: { id: sessionId, expires_at: expiresAt.toISOString(), session_type: sessionType },
      mfa_required: false,
      mfa_setup_required: false,
    };
  }

  /** A tenant with its default project and one unrestricted API key (dev bootstrap, admin CLI). */
  async bootstrapTenant(name: string): Promise<{ apiKey: string; tenantId: string; projectId: string }> {
    const { tenantId, projectId } = await this.createTenant(name);
    const system: Principal = {
      kind: 'session', tenantId, accountId: null, accountPublicId: null, apiKeyId: null, role: 'owner', scopes: [],
      projectLock: null, environment: 'development', rateLimitTier: 'unlimited', platformAdmin: false,
    };
    const key = await this.createApiKey(
      { tenantId, projectId: null, principal: system },
      { name: 'development', environment: 'production', scopes: ['memories:read', 'memories:write', 'projects:read', 'projects:write'] },
      { requestId: 'bootstrap', ipAddress: null, userAgent: 'memorysync-cli', audit: { written: false } },
    );
    return { apiKey: key.key, tenantId, projectId };
  }

  // ---------- credentials → principal

  /** Resolves an access token to a principal; the session must still be live (logout is immediate). */
  async principalFromAccessToken(token: string): Promise<{ principal: Principal; sessionId: string }> {
    const claims: AccessClaims = await this.deps.tokens.verify(token);
    const key = principalKey('session', claims.sid);
    const cached = await this.deps.cache.get<Principal>(key);
    if (cached) return { principal: cached, sessionId: claims.sid };
    const row = await this.deps.db
      .selectFrom('refresh_tokens as r')
      .innerJoin('users as u', 'u.id', 'r.user_id')
      .innerJoin('tenants as t', 't.id', 'u.tenant_id')
      .select(['u.id as user_id', 'u.public_id', 'u.tenant_id', 'u.role', 'u.email', 't.status'])
      .where('r.session_id', '=', claims.sid)
      .where('r.revoked_at', 'is', null)
      .where('u.public_id', '=', claims.sub)
      .limit(1)
      .executeTakeFirst();
    if (!row || row.tenant_id !== claims.tid) throw unauthorized('Session is no longer valid', 'SESSION_REVOKED');
    if (row.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
    const principal: Principal = {
      kind: 'session', tenantId: row.tenant_id, accountId: row.user_id, accountPublicId: row.public_id, apiKeyId: null,
      role: row.role as Role, scopes: [], projectLock: null, environment: 'production', rateLimitTier: 'unlimited',
      platformAdmin: !!row.email && (this.deps.platformAdminEmails ?? []).includes(row.email.toLowerCase()),
    };
    await this.deps.cache.set(key, principal, Math.min(this.deps.cacheTtlSeconds, this.deps.tokens.ttlSeconds));
    return { principal, sessionId: claims.sid };
  }

  /** Resolves an API key (`ms_…`) to a principal; revoked or expired keys fail at once. */
  async principalFromApiKey(key: string): Promise<Principal> {
    if (!/^ms_[A-Za-z0-9_]{8,200}$/.test(key)) throw unauthorized('Invalid API key', 'INVALID_API_KEY');
    const hash = sha256Hex(key);
    const cacheKey = principalKey('key', hash);
    const cached = await this.deps.cache.get<Principal & { expiresAt: string | null }>(cacheKey);
    if (cached && (!cached.expiresAt || new Date(cached.expiresAt) > this.deps.clock.now())) return cached;
    // The lookup is by the SHA-256 of a 190-bit random secret: an index probe, not a comparison an attacker can time.
    const row = await this.deps.db
      .selectFrom('api_keys as k')
      .innerJoin('tenants as t', 't.id', 'k.tenant_id')
      .select(['k.id', 'k.tenant_id', 'k.scopes', 'k.project_id', 'k.environment', 'k.rate_limit_tier', 'k.created_by', 'k.revoked_at', 'k.expires_at', 't.status'])
      .where('k.key_hash', '=', hash)
      .executeTakeFirst();
    if (!row || row.revoked_at) throw unauthorized('Invalid API key', 'INVALID_API_KEY');
    if (row.expires_at && new Date(row.expires_at) <= this.deps.clock.now()) throw unauthorized('API key expired', 'INVALID_API_KEY');
    if (row.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
    const principal: Principal & { expiresAt: string | null } = {
      kind: 'api_key', tenantId: row.tenant_id, accountId: row.created_by, accountPublicId: null, apiKeyId: row.id,
      role: 'member', scopes: row.scopes, projectLock: row.project_id, environment: row.environment,
      rateLimitTier: row.rate_limit_tier, platformAdmin: false,
      expiresAt: row.expires_at ? new Date(row.expires_at).toISOString() : null,
    };
    await this.deps.cache.set(cacheKey, principal, this.deps.cacheTtlSeconds);
    // last_used_at is advisory; a failure here must not fail the request.
    this.deps.db.updateTable('api_keys').set({ last_used_at: this.deps.clock.now() }).where('id', '=', row.id).execute().catch(() => {});
    return principal;
  }

  // ---------- API keys

  async createApiKey(scope: Scope, input: { name: string; environment?: string; scopes?: string[]; project_id?: string | null; rate_limit_tier?: string; expires_in_days?: number }, meta: AuditMeta) {
    if (input.project_id) await this.getProjectOrThrow(scope, input.project_id);
    const secret = newApiKeySecret(input.environment);
    const expiresAt = input.expires_in_days ? new Date(this.deps.clock.now().getTime() + input.expires_in_days * 86_400_000) : null;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('api_keys')
        .values({
          tenant_id: scope.tenantId, name: input.name, key_hash: sha256Hex(secret), key_prefix: secret.slice(0, 12),
          environment: input.environment ?? 'production', scopes: JSON.stringify(input.scopes ?? [...DEFAULT_KEY_SCOPES]),
          project_id: input.project_id ?? null, rate_limit_tier: input.rate_limit_tier ?? 'unlimited',
          created_by: scope.principal.accountId, expires_at: expiresAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const taskIds = await this.emitKeyEvent(trx, scope.tenantId, 'api_key.created', row);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'api_key.created', category: 'security', resourceType: 'api_key', resourceId: String(row.id), action: 'create', status: 'success', statusCode: 201, payload: { name: row.name, key_prefix: row.key_prefix, scopes: row.scopes } });
      meta.audit.written = true;
      return { response: { ...toApiKeyResponse(row), key: secret }, taskIds };
    }).then(async ({ response, taskIds }) => {
      if (taskIds.length) await this.deps.outbox?.relay(taskIds);
      return response;
    });
  }

  async listApiKeys(scope: Scope) {
    const rows = await this.deps.db.selectFrom('api_keys').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('id', 'desc').execute();
    return rows.map(toApiKeyResponse);
  }

  async revokeApiKey(scope: Scope, id: number, meta: AuditMeta) {
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('api_keys').set({ revoked_at: this.deps.clock.now() }).where('id', '=', id).where('tenant_id', '=', scope.tenantId).where('revoked_at', 'is', null).returningAll().executeTakeFirst();
      if (!updated) throw notFound('API key not found');
      const taskIds = await this.emitKeyEvent(trx, scope.tenantId, 'api_key.revoked', updated, { reason: 'revoked' });
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'api_key.revoked', category: 'security', resourceType: 'api_key', resourceId: String(id), action: 'revoke', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return { ...updated, taskIds };
    });
    await this.deps.cache.del(principalKey('key', row.key_hash));
    if (row.taskIds.length) await this.deps.outbox?.relay(row.taskIds);
    return toApiKeyResponse(row);
  }

  /** Enqueues an API key webhook in the caller's transaction (no outbox wired: no event); returns the task ids to relay after commit. */
  private async emitKeyEvent(trx: Kysely<Database>, tenantId: string, event: 'api_key.created' | 'api_key.revoked', row: Parameters<typeof apiKeyWebhookTask>[2], extra?: Record<string, unknown>): Promise<string[]> {
    if (!this.deps.outbox) return [];
    const task = apiKeyWebhookTask(tenantId, event, row, this.deps.clock.now(), extra);
    await this.deps.outbox.enqueue(trx, [task]);
    return [task.id];
  }

  // ---------- projects

  async listProjects(scope: Scope) {
    const rows = await this.deps.db.selectFrom('projects').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('is_default', 'desc').orderBy('created_at').execute();
    return rows.map(toProjectResponse);
  }

  /** `undefined` when the project does not exist in this tenant (another tenant's project included). */
  async getProject(scope: Pick<Scope, 'tenantId'>, projectId: string): Promise<ProjectRow | undefined> {
    const key = `project:${scope.tenantId}:${projectId}`;
    const cached = await this.deps.cache.get<ProjectRow>(key);
    if (cached) return cached;
    const row = await this.deps.db.selectFrom('projects').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).executeTakeFirst();
    if (row) await this.deps.cache.set(key, row, this.deps.cacheTtlSeconds);
    return row;
  }

  /** The stored row, never the cached copy: `memory_count` moves with every write. */
  async readProjectOrThrow(scope: Pick<Scope, 'tenantId'>, projectId: string): Promise<ProjectRow> {
    const row = await this.deps.db.selectFrom('projects').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).executeTakeFirst();
    if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'Project not found');
    return row;
  }

  async getProjectOrThrow(scope: Pick<Scope, 'tenantId'>, projectId: string): Promise<ProjectRow> {
    const row = await this.getProject(scope, projectId);
    if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'Project not found');
    return row;
  }

  async createProject(scope: Scope, input: { name: string; description?: string | null }, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.insertInto('projects').values({ id: newProjectId(), tenant_id: scope.tenantId, name: input.name, description: input.description ?? null }).returningAll().executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'project.created', category: 'org', resourceType: 'project', resourceId: row.id, action: 'create', status: 'success', statusCode: 201 });
      meta.audit.written = true;
      return toProjectResponse(row);
    });
  }

  async updateProject(scope: Scope, projectId: string, input: { name?: string; description?: string | null }, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.updateTable('projects').set({ ...input, updated_at: this.deps.clock.now() }).where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).returningAll().executeTakeFirst();
      if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'Project not found');
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'project.updated', category: 'org', resourceType: 'project', resourceId: row.id, action: 'update', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      await this.deps.cache.del(`project:${scope.tenantId}:${projectId}`);
      return toProjectResponse(row);
    });
  }

  /** Memories of a deleted project stay, with project_id null; the default project cannot be deleted. */
  async deleteProject(scope: Scope, projectId: string, meta: AuditMeta) {
    await this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('projects').selectAll().where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).forUpdate().executeTakeFirst();
      if (!row) throw new AppError('PROJECT_NOT_FOUND', 404, 'Project not found');
      if (row.is_default) throw conflict('The default project cannot be deleted');
      await trx.updateTable('memories').set({ project_id: null }).where('tenant_id', '=', scope.tenantId).where('project_id', '=', projectId).execute();
      await trx.deleteFrom('projects').where('tenant_id', '=', scope.tenantId).where('id', '=', projectId).execute();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'project.deleted', category: 'org', resourceType: 'project', resourceId: projectId, action: 'delete', status: 'success', statusCode: 200 });
      meta.audit.written = true;
    });
    await this.deps.cache.del(`project:${scope.tenantId}:${projectId}`);
  }

  // ---------- end users

  /** The internal id of an end user, created on first sight (idempotent upsert keyed by tenant + external id). */
  async resolveEndUser(tenantId: string, endUserId: string): Promise<number> {
    const externalId = `${tenantId}:${endUserId}`;
    const key = `enduser:${externalId}`;
    const cached = await this.deps.cache.get<number>(key);
    if (cached) return cached;
    await this.deps.db
      .insertInto('users')
      .values({ public_id: newUserPublicId(), tenant_id: tenantId, kind: 'end_user', external_id: externalId, email: null, password_hash: null, full_name: null, role: 'user' })
      .onConflict((oc) => oc.column('external_id').doNothing())
      .execute();
    const row = await this.deps.db.selectFrom('users').select('id').where('external_id', '=', externalId).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
    await this.deps.cache.set(key, row.id, this.deps.cacheTtlSeconds);
    return row.id;
  }

  async me(principal: Principal) {
    if (!principal.accountId) return { tenant_id: principal.tenantId, kind: principal.kind, scopes: principal.scopes };
    const user = await this.deps.db.selectFrom('users').selectAll().where('id', '=', principal.accountId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
    if (!user) throw notFound('User not found');
    return { id: user.public_id, email: user.email, full_name: user.full_name, role: user.role, tenant_id: user.tenant_id, kind: principal.kind, created_at: new Date(user.created_at).toISOString() };
  }
}

export interface AuditMeta {
  requestId: string;
  ipAddress: string | null;
  userAgent: string | null;
  audit: { written: boolean };
}

export const auditBase = (meta: AuditMeta): Pick<AuditEntry, 'requestId' | 'ipAddress' | 'userAgent'> => ({
  requestId: meta.requestId,
  ipAddress: meta.ipAddress,
  userAgent: meta.userAgent,
});

export const principalLabel = (p: Principal): string =>
  p.kind === 'api_key' ? `api_key:${p.apiKeyId}` : `${p.kind}:${p.accountPublicId ?? p.accountId}`;

/** `ms_live_…` for production keys, `ms_test_…` for development and staging ones. */
export function newApiKeySecret(environment: string | undefined): string {
  const prefix = environment === 'development' || environment === 'staging' ? 'ms_test_' : 'ms_live_';
  return `${prefix}${randomToken(24).replace(/[-_]/g, 'x')}`;
}

export function toApiKeyResponse(row: { id: number; name: string; key_prefix: string; environment: string; scopes: string[]; project_id: string | null; rate_limit_tier: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null; expires_at: Date | null }) {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    id: row.id, name: row.name, key_prefix: row.key_prefix, environment: row.environment, scopes: row.scopes,
    project_id: row.project_id, rate_limit_tier: row.rate_limit_tier, created_at: iso(row.created_at),
    last_used_at: iso(row.last_used_at), revoked_at: iso(row.revoked_at), expires_at: iso(row.expires_at),
  };
}

const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
void sql;
