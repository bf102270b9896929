import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound, unauthorized } from '../../errors.ts';
import type { Cache } from '../../ports/cache.ts';
import type { Clock } from '../../ports/clock.ts';
import { randomToken, sha256Hex } from '../../crypto/hashing.ts';
import { writeAudit } from '../audit.ts';
import { auditBase, principalLabel, type AuditMeta } from '../identity-service.ts';
import { newUserPublicId } from '../ids.ts';
import type { Principal, Scope } from '../scope.ts';
import { getKey, matchesFilter, parseFilter } from './scim-filter.ts';
import { applyPatch, type PatchOperation } from './scim-patch.ts';

export const SCIM_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCIM_LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCIM_MAX_PAGE = 200;

type Json = Record<string, unknown>;

/** Zod schemas of a User and a Group resource, supplied by the HTTP layer (they also document the routes). */
export interface ScimSchemas {
  user: z.ZodType<Json>;
  group: z.ZodType<Json>;
}

export interface ScimDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  cacheTtlSeconds: number;
  schemas: ScimSchemas;
}

export interface ListQuery {
  filter?: string;
  startIndex: number;
  count: number;
}

/** Attributes a client may not set: the server owns them (RFC 7643 §3.1, `groups` is read-only on User). */
const SERVER_OWNED = ['id', 'meta', 'schemas', 'groups', 'password'];

const uniqueness = (message: string) => new AppError('uniqueness', 409, message);
const invalidValue = (message: string) => new AppError('invalidValue', 400, message);
const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';
const iso = (d: Date | string) => new Date(d).toISOString();
const etag = (version: number) => `W/"${version}"`;
const scimExternalId = (tenantId: string, externalId: string) => `scim:${tenantId}:${externalId}`;

/** `active` arrives as a boolean or, from Azure AD, as "True"/"False". */
const asBoolean = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : typeof v === 'string' && /^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : undefined);

interface AccountRow {
  id: number;
  public_id: string;
  email: string | null;
  full_name: string | null;
  role: string;
  external_id: string | null;
  created_at: Date;
  user_name: string | null;
  active: boolean | null;
  attributes: Json | null;
  version: number | null;
  updated_at: Date | null;
}

/**
 * SCIM 2.0 provisioning (RFC 7643/7644) of a tenant's accounts and groups: provisioning tokens,
 * Users mapped onto accounts (`externalId` kept in users.external_id, namespaced by tenant), Groups
 * with members, filters, pagination and PATCH. Every query is built from the token's tenant.
 */
export class ScimService {
  constructor(private readonly deps: ScimDeps) {}

  // ---------- provisioning tokens (tenant admins)

  async createToken(scope: Scope, input: { name: string }, meta: AuditMeta) {
    const token = `scim_${randomToken(32)}`;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.insertInto('scim_tokens').values({ tenant_id: scope.tenantId, name: input.name, token_hash: sha256Hex(token), token_prefix: token.slice(0, 12), created_by: scope.principal.accountId }).returningAll().executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'scim_token.created', category: 'security', resourceType: 'scim_token', resourceId: String(row.id), action: 'create', status: 'success', statusCode: 201, payload: { token_prefix: row.token_prefix } });
      meta.audit.written = true;
      return { ...toTokenResponse(row), token };
    });
  }

  async listTokens(scope: Scope) {
    const rows = await this.deps.db.selectFrom('scim_tokens').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('id', 'desc').execute();
    return rows.map(toTokenResponse);
  }

  async revokeToken(scope: Scope, id: number, meta: AuditMeta) {
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('scim_tokens').set({ revoked_at: this.deps.clock.now() }).where('tenant_id', '=', scope.tenantId).where('id', '=', id).where('revoked_at', 'is', null).returningAll().executeTakeFirst();
      if (!updated) throw notFound('SCIM token not found');
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'scim_token.revoked', category: 'security', resourceType: 'scim_token', resourceId: String(id), action: 'revoke', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return updated;
    });
    await this.deps.cache.del(tokenCacheKey(row.token_hash));
    return toTokenResponse(row);
  }

  /** A `scim` principal: it opens /scim/v2 of its tenant and nothing else. */
  async principalFromToken(token: string): Promise<Principal> {
    if (!/^scim_[A-Za-z0-9_-]{20,100}$/.test(token)) throw unauthorized('Invalid SCIM token', 'INVALID_TOKEN');
    const hash = sha256Hex(token);
    const cached = await this.deps.cache.get<Principal>(tokenCacheKey(hash));
    if (cached) return cached;
    const row = await this.deps.db
      .selectFrom('scim_tokens as s')
      .innerJoin('tenants as t', 't.id', 's.tenant_id')
      .select(['s.id', 's.tenant_id', 's.created_by', 's.revoked_at', 't.status'])
      .where('s.token_hash', '=', hash)
      .executeTakeFirst();
    if (!row || row.revoked_at) throw unauthorized('Invalid SCIM token', 'INVALID_TOKEN');
    if (row.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
    const principal: Principal = {
      kind: 'scim', tenantId: row.tenant_id, accountId: row.created_by, accountPublicId: null, apiKeyId: null, role: 'member',
      scopes: ['scim:provision'], projectLock: null, environment: 'production', rateLimitTier: 'pro', platformAdmin: false,
    };
    await this.deps.cache.set(tokenCacheKey(hash), principal, this.deps.cacheTtlSeconds);
    this.deps.db.updateTable('scim_tokens').set({ last_used_at: this.deps.clock.now() }).where('id', '=', row.id).execute().catch(() => {});
    return principal;
  }

  // ---------- Users

  async listUsers(scope: Scope, query: ListQuery, baseUrl: string) {
    const filter = query.filter ? parseFilter(query.filter) : undefined;
    const groups = await this.groupsByUser(scope.tenantId);
    const all = (await this.accounts(scope.tenantId)).map((row) => this.toUser(scope.tenantId, row, groups.get(row.id) ?? [], baseUrl));
    return listResponse(filter ? all.filter((u) => matchesFilter(u, filter)) : all, query);
  }

  async getUser(scope: Scope, id: string, baseUrl: string) {
    const row = await this.accountOrThrow(this.deps.db, scope.tenantId, id);
    return this.toUser(scope.tenantId, row, (await this.groupsByUser(scope.tenantId, row.id)).get(row.id) ?? [], baseUrl);
  }

  async createUser(scope: Scope, body: Json, baseUrl: string, meta: AuditMeta) {
    const resource = this.validUser(body);
    const tenantId = scope.tenantId;
    try {
      return await this.deps.db.transaction().execute(async (trx) => {
        await this.assertUserNameFree(trx, tenantId, resource.userName as string);
        const columns = userColumns(tenantId, resource);
        const user = await trx
          .insertInto('users')
          .values({ public_id: newUserPublicId(), tenant_id: tenantId, kind: 'account', password_hash: null, role: 'member', ...columns })
          .returning(['id', 'public_id'])
          .executeTakeFirstOrThrow();
        await trx.insertInto('scim_users').values({ user_id: user.id, tenant_id: tenantId, user_name: resource.userName as string, active: asBoolean(resource.active) ?? true, attributes: JSON.stringify(storedAttributes(resource)) }).execute();
        await this.audit(trx, scope, meta, 'scim.user.created', 'user', user.public_id, 'create', 201);
        return this.toUser(tenantId, await this.accountOrThrow(trx, tenantId, user.public_id), [], baseUrl);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw uniqueness('userName, email or externalId is already in use');
      throw err;
    }
  }

  /** PUT replaces every client-settable attribute; PATCH computes the new resource and saves it the same way. */
  async replaceUser(scope: Scope, id: string, body: Json, baseUrl: string, meta: AuditMeta) {
    return this.saveUser(scope, id, () => body, baseUrl, meta, 'scim.user.replaced');
  }

  async patchUser(scope: Scope, id: string, operations: PatchOperation[], baseUrl: string, meta: AuditMeta) {
    return this.saveUser(scope, id, (current) => applyPatch(current, operations), baseUrl, meta, 'scim.user.patched');
  }

  async deleteUser(scope: Scope, id: string, meta: AuditMeta) {
    await this.deps.db.transaction().execute(async (trx) => {
      const row = await this.accountOrThrow(trx, scope.tenantId, id);
      if (row.role === 'owner') throw forbidden('SCIM cannot delete the organization owner');
      const sessions = await this.sessionsOf(trx, row.id);
      await trx.deleteFrom('users').where('id', '=', row.id).where('tenant_id', '=', scope.tenantId).execute();
      await this.audit(trx, scope, meta, 'scim.user.deleted', 'user', id, 'delete', 204);
      await this.forgetSessions(sessions);
    });
  }

  private async saveUser(scope: Scope, id: string, next: (current: Json) => Json, baseUrl: string, meta: AuditMeta, event: string) {
    const tenantId = scope.tenantId;
    try {
      return await this.deps.db.transaction().execute(async (trx) => {
        const row = await this.accountOrThrow(trx, tenantId, id, true);
        const groups = (await this.groupsByUser(tenantId, row.id, trx)).get(row.id) ?? [];
        const current = this.toUser(tenantId, row, groups, baseUrl);
        const resource = this.validUser(next(current));
        if ((resource.userName as string).toLowerCase() !== (current.userName as string).toLowerCase()) await this.assertUserNameFree(trx, tenantId, resource.userName as string, row.id);
        const active = asBoolean(resource.active) ?? true;
        if (!active && row.role === 'owner') throw forbidden('SCIM cannot deactivate the organization owner');
        await trx.updateTable('users').set(userColumns(tenantId, resource)).where('id', '=', row.id).where('tenant_id', '=', tenantId).execute();
        const values = { user_name: resource.userName as string, active, attributes: JSON.stringify(storedAttributes(resource)), updated_at: this.deps.clock.now() };
        await trx.insertInto('scim_users').values({ user_id: row.id, tenant_id: tenantId, ...values })
          .onConflict((oc) => oc.column('user_id').doUpdateSet((eb) => ({ ...values, version: eb('scim_users.version', '+', 1) })))
          .execute();
        if (!active) {
          // Deactivation ends every session of the account at once.
          const sessions = await this.sessionsOf(trx, row.id);
          await trx.updateTable('refresh_tokens').set({ revoked_at: this.deps.clock.now() }).where('user_id', '=', row.id).where('revoked_at', 'is', null).execute();
          await this.forgetSessions(sessions);
        }
        await this.audit(trx, scope, meta, event, 'user', id, 'update', 200);
        return this.toUser(tenantId, await this.accountOrThrow(trx, tenantId, id), groups, baseUrl);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw uniqueness('userName, email or externalId is already in use');
      throw err;
    }
  }

  // ---------- Groups

  async listGroups(scope: Scope, query: ListQuery, baseUrl: string) {
    const filter = query.filter ? parseFilter(query.filter) : undefined;
    const all = await this.groupResources(this.deps.db, scope.tenantId, undefined, baseUrl);
    return listResponse(filter ? all.filter((g) => matchesFilter(g, filter)) : all, query);
  }

  async getGroup(scope: Scope, id: string, baseUrl: string) {
    const [group] = await this.groupResources(this.deps.db, scope.tenantId, id, baseUrl);
    if (!group) throw notFound(`Group ${id} not found`);
    return group;
  }

  async createGroup(scope: Scope, body: Json, baseUrl: string, meta: AuditMeta) {
    const resource = this.validGroup(body);
    const id = `grp_${randomBytes(8).toString('hex')}`;
    try {
      return await this.deps.db.transaction().execute(async (trx) => {
        await trx.insertInto('groups').values({ id, tenant_id: scope.tenantId, display_name: resource.displayName as string, external_id: (resource.externalId as string | undefined) ?? null }).execute();
        await this.setMembers(trx, scope.tenantId, id, resource.members);
        await this.audit(trx, scope, meta, 'scim.group.created', 'group', id, 'create', 201);
        return (await this.groupResources(trx, scope.tenantId, id, baseUrl))[0];
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw uniqueness('A group with this displayName already exists');
      throw err;
    }
  }

  async replaceGroup(scope: Scope, id: string, body: Json, baseUrl: string, meta: AuditMeta) {
    return this.saveGroup(scope, id, () => body, baseUrl, meta, 'scim.group.replaced');
  }

  async patchGroup(scope: Scope, id: string, operations: PatchOperation[], baseUrl: string, meta: AuditMeta) {
    return this.saveGroup(scope, id, (current) => applyPatch(current, operations), baseUrl, meta, 'scim.group.patched');
  }

  async deleteGroup(scope: Scope, id: string, meta: AuditMeta) {
    await this.deps.db.transaction().execute(async (trx) => {
      const deleted = await trx.deleteFrom('groups').where('tenant_id', '=', scope.tenantId).where('id', '=', id).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw notFound(`Group ${id} not found`);
      await this.audit(trx, scope, meta, 'scim.group.deleted', 'group', id, 'delete', 204);
    });
  }

  private async saveGroup(scope: Scope, id: string, next: (current: Json) => Json, baseUrl: string, meta: AuditMeta, event: string) {
    try {
      return await this.deps.db.transaction().execute(async (trx) => {
        const locked = await trx.selectFrom('groups').select('id').where('tenant_id', '=', scope.tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
        if (!locked) throw notFound(`Group ${id} not found`);
        const [current] = await this.groupResources(trx, scope.tenantId, id, baseUrl);
        const resource = this.validGroup(next(current));
        await trx.updateTable('groups')
          .set((eb) => ({ display_name: resource.displayName as string, external_id: (resource.externalId as string | undefined) ?? null, updated_at: this.deps.clock.now(), version: eb('version', '+', 1) }))
          .where('tenant_id', '=', scope.tenantId).where('id', '=', id).execute();
        await this.setMembers(trx, scope.tenantId, id, resource.members);
        await this.audit(trx, scope, meta, event, 'group', id, 'update', 200);
        return (await this.groupResources(trx, scope.tenantId, id, baseUrl))[0];
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw uniqueness('A group with this displayName already exists');
      throw err;
    }
  }

  /** Members are accounts of the same tenant, named by their SCIM id; an unknown id is an invalid value. */
  private async setMembers(trx: Kysely<Database>, tenantId: string, groupId: string, members: unknown): Promise<void> {
    const ids = [...new Set((Array.isArray(members) ? members : []).map((m) => getKey(m, 'value')).filter((v): v is string => typeof v === 'string'))];
    const users = ids.length ? await trx.selectFrom('users').select(['id', 'public_id']).where('tenant_id', '=', tenantId).where('kind', '=', 'account').where('public_id', 'in', ids).execute() : [];
    if (users.length !== ids.length) throw invalidValue(`Unknown member: ${ids.filter((i) => !users.some((u) => u.public_id === i)).join(', ')}`);
    await trx.deleteFrom('group_members').where('tenant_id', '=', tenantId).where('group_id', '=', groupId).execute();
    if (users.length) await trx.insertInto('group_members').values(users.map((u) => ({ group_id: groupId, user_id: u.id, tenant_id: tenantId }))).execute();
  }

  private async groupResources(db: Kysely<Database>, tenantId: string, id: string | undefined, baseUrl: string): Promise<Json[]> {
    let q = db.selectFrom('groups').selectAll().where('tenant_id', '=', tenantId);
    if (id) q = q.where('id', '=', id);
    const groups = await q.orderBy('created_at').orderBy('id').execute();
    if (groups.length === 0) return [];
    const members = await db
      .selectFrom('group_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.group_id', 'u.public_id', 'u.full_name', 'u.email'])
      .where('m.tenant_id', '=', tenantId)
      .where('m.group_id', 'in', groups.map((g) => g.id))
      .orderBy('u.public_id')
      .execute();
    return groups.map((g) => ({
      schemas: [SCIM_GROUP_SCHEMA],
      id: g.id,
      ...(g.external_id ? { externalId: g.external_id } : {}),
      displayName: g.display_name,
      members: members.filter((m) => m.group_id === g.id).map((m) => ({ value: m.public_id, $ref: `${baseUrl}/scim/v2/Users/${m.public_id}`, display: m.full_name ?? m.email ?? m.public_id, type: 'User' })),
      meta: { resourceType: 'Group', created: iso(g.created_at), lastModified: iso(g.updated_at), location: `${baseUrl}/scim/v2/Groups/${g.id}`, version: etag(g.version) },
    }));
  }

  // ---------- accounts as SCIM Users

  private accountsQuery(db: Kysely<Database>, tenantId: string) {
    return db
      .selectFrom('users as u')
      .leftJoin('scim_users as s', 's.user_id', 'u.id')
      .select(['u.id', 'u.public_id', 'u.email', 'u.full_name', 'u.role', 'u.external_id', 'u.created_at', 's.user_name', 's.active', 's.attributes', 's.version', 's.updated_at'])
      .where('u.tenant_id', '=', tenantId)
      .where('u.kind', '=', 'account');
  }

  private async accounts(tenantId: string): Promise<AccountRow[]> {
    return (await this.accountsQuery(this.deps.db, tenantId).orderBy('u.id').execute()) as AccountRow[];
  }

  private async accountOrThrow(db: Kysely<Database>, tenantId: string, publicId: string, lock = false): Promise<AccountRow> {
    let q = this.accountsQuery(db, tenantId).where('u.public_id', '=', publicId);
    if (lock) q = q.forUpdate('u');
    const row = (await q.executeTakeFirst()) as AccountRow | undefined;
    if (!row) throw notFound(`User ${publicId} not found`);
    return row;
  }

  private async assertUserNameFree(trx: Kysely<Database>, tenantId: string, userName: string, exceptUserId?: number): Promise<void> {
    const wanted = userName.toLowerCase();
    const rows = await this.accountsQuery(trx, tenantId).execute();
    if (rows.some((r) => r.id !== exceptUserId && (r.user_name ?? r.email ?? '').toLowerCase() === wanted)) throw uniqueness(`userName ${userName} is already in use`);
  }

  private async groupsByUser(tenantId: string, userId?: number, db: Kysely<Database> = this.deps.db): Promise<Map<number, Json[]>> {
    let q = db.selectFrom('group_members as m').innerJoin('groups as g', 'g.id', 'm.group_id').select(['m.user_id', 'g.id', 'g.display_name']).where('m.tenant_id', '=', tenantId);
    if (userId !== undefined) q = q.where('m.user_id', '=', userId);
    const out = new Map<number, Json[]>();
    for (const r of await q.orderBy('g.id').execute()) {
      const list = out.get(r.user_id) ?? [];
      list.push({ value: r.id, display: r.display_name, type: 'direct' });
      out.set(r.user_id, list);
    }
    return out;
  }

  /** Accounts created outside SCIM (signup, invitations, SSO) appear with userName = email, active. */
  private toUser(tenantId: string, row: AccountRow, groups: Json[], baseUrl: string): Json {
    const stored = row.attributes ?? {};
    const prefix = `scim:${tenantId}:`;
    const externalId = row.external_id?.startsWith(prefix) ? row.external_id.slice(prefix.length) : undefined;
    const base: Json = row.user_name === null
      ? { displayName: row.full_name ?? undefined, name: row.full_name ? { formatted: row.full_name } : undefined, emails: row.email ? [{ value: row.email, primary: true }] : undefined }
      : stored;
    const version = row.version ?? 1;
    return JSON.parse(JSON.stringify({
      ...base,
      schemas: [SCIM_USER_SCHEMA],
      id: row.public_id,
      ...(externalId ? { externalId } : {}),
      userName: row.user_name ?? row.email ?? row.public_id,
      active: row.active ?? true,
      groups: groups.map((g) => ({ ...g, $ref: `${baseUrl}/scim/v2/Groups/${g.value as string}` })),
      meta: { resourceType: 'User', created: iso(row.created_at), lastModified: iso(row.updated_at ?? row.created_at), location: `${baseUrl}/scim/v2/Users/${row.public_id}`, version: etag(version) },
    })) as Json;
  }

  private validUser(resource: Json): Json {
    const parsed = this.deps.schemas.user.safeParse(resource);
    if (!parsed.success) throw invalidValue(`Invalid User: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'resource'}: ${i.message}`).join('; ')}`);
    const active = parsed.data.active;
    if (active !== undefined && asBoolean(active) === undefined) throw invalidValue('active must be a boolean');
    return parsed.data;
  }

  private validGroup(resource: Json): Json {
    const parsed = this.deps.schemas.group.safeParse(resource);
    if (!parsed.success) throw invalidValue(`Invalid Group: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'resource'}: ${i.message}`).join('; ')}`);
    return parsed.data;
  }

  private async sessionsOf(trx: Kysely<Database>, userId: number): Promise<string[]> {
    const rows = await trx.selectFrom('refresh_tokens').select('session_id').distinct().where('user_id', '=', userId).execute();
    return rows.map((r) => r.session_id);
  }

  /** Cached session principals (IdentityService's `principal:session:<id>` keys) must not outlive the account. */
  private async forgetSessions(sessionIds: string[]): Promise<void> {
    if (sessionIds.length) await this.deps.cache.del(...sessionIds.map((id) => `principal:session:${id}`));
  }

  private async audit(trx: Kysely<Database>, scope: Scope, meta: AuditMeta, eventType: string, resourceType: string, resourceId: string, action: string, statusCode: number) {
    await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType, category: 'security', resourceType, resourceId, action, status: 'success', statusCode });
    meta.audit.written = true;
  }
}

/** The account columns a SCIM User drives: email (primary, else a userName that looks like one), name, externalId. */
function userColumns(tenantId: string, resource: Json) {
  const emails = Array.isArray(resource.emails) ? (resource.emails as Json[]) : [];
  const primary = emails.find((e) => e.primary === true) ?? emails[0];
  const userName = resource.userName as string;
  const email = typeof primary?.value === 'string' ? primary.value : /^[^@\s]+@[^@\s]+$/.test(userName) ? userName : null;
  const name = (resource.name ?? {}) as Json;
  const fullName = (typeof name.formatted === 'string' && name.formatted) || [name.givenName, name.familyName].filter((v) => typeof v === 'string').join(' ') || (typeof resource.displayName === 'string' ? resource.displayName : '') || null;
  const externalId = typeof resource.externalId === 'string' ? resource.externalId : undefined;
  return { email: email ? email.trim().toLowerCase() : null, full_name: fullName, external_id: externalId ? scimExternalId(tenantId, externalId) : null };
}

function storedAttributes(resource: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(resource)) {
    if (!SERVER_OWNED.includes(k.toLowerCase()) && !['username', 'active', 'externalid'].includes(k.toLowerCase())) out[k] = v;
  }
  return out;
}

/** ListResponse with 1-based `startIndex` and `count` (RFC 7644 §3.4.2.4); count=0 returns only the total. */
function listResponse(resources: Json[], query: ListQuery) {
  const start = Math.max(1, query.startIndex);
  const count = Math.min(Math.max(0, query.count), SCIM_MAX_PAGE);
  const page = resources.slice(start - 1, start - 1 + count);
  return { schemas: [SCIM_LIST_SCHEMA], totalResults: resources.length, itemsPerPage: page.length, startIndex: start, Resources: page };
}

const tokenCacheKey = (hash: string) => `principal:scim:${hash}`;

function toTokenResponse(row: { id: number; name: string; token_prefix: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }) {
  return { id: row.id, name: row.name, token_prefix: row.token_prefix, created_at: iso(row.created_at), last_used_at: row.last_used_at ? iso(row.last_used_at) : null, revoked_at: row.revoked_at ? iso(row.revoked_at) : null };
}
