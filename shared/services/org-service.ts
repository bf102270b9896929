import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, InvitationsTable, UserRow } from '../db/schema.ts';
import { AppError, conflict, forbidden, notFound } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import { namespaceForUser, type VectorStore } from '../ports/vector-store.ts';
import { hashPassword, randomToken, sha256Hex } from '../crypto/hashing.ts';
import { writeAudit } from './audit.ts';
import { auditBase, newApiKeySecret, principalKey, principalLabel, roleAtLeast, toApiKeyResponse, type AuditMeta } from './identity-service.ts';
import { newUserPublicId } from './ids.ts';
import type { OutboxPort } from './memory-service.ts';
import { apiKeyWebhookTask, orgWebhookTask } from './org-events.ts';
import type { Role, Scope } from './scope.ts';

export interface OrgServiceDeps {
  db: Kysely<Database>;
  cache: Cache;
  clock: Clock;
  outbox: OutboxPort;
  vectors: VectorStore;
  /** how long an invitation token stays valid */
  invitationTtlDays?: number;
}

export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'expired';

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

export const toMemberResponse = (u: Pick<UserRow, 'public_id' | 'email' | 'full_name' | 'role' | 'tenant_id' | 'created_at'>) => ({
  id: u.public_id,
  user_id: u.public_id,
  email: u.email,
  full_name: u.full_name,
  role: u.role,
  tenant_id: u.tenant_id,
  created_at: iso(u.created_at),
});

/**
 * The team of a tenant (accounts and their roles, invitations) and API key rotation. Every query is
 * bound to the caller's tenant; role rules: only an owner grants or takes away the owner role, and
 * the last owner can be neither demoted nor removed.
 */
export class OrgService {
  private readonly ttlDays: number;

  constructor(private readonly deps: OrgServiceDeps) {
    this.ttlDays = deps.invitationTtlDays ?? 7;
  }

  // ---------------------------------------------------------------- members

  async listMembers(scope: Scope) {
    const rows = await this.deps.db.selectFrom('users').selectAll().where('tenant_id', '=', scope.tenantId).where('kind', '=', 'account').orderBy('created_at').orderBy('id').execute();
    return rows.map(toMemberResponse);
  }

  async updateMemberRole(scope: Scope, memberId: string, role: Role, meta: AuditMeta) {
    const updated = await this.deps.db.transaction().execute(async (trx) => {
      const target = await this.lockMember(trx, scope, memberId);
      this.assertMayChange(scope, target.role as Role, role);
      if (target.role === 'owner' && role !== 'owner') await this.assertNotLastOwner(trx, scope);
      const row = await trx.updateTable('users').set({ role }).where('tenant_id', '=', scope.tenantId).where('id', '=', target.id).returningAll().executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'team.member_role_changed', category: 'org', resourceType: 'user', resourceId: row.public_id, action: 'update', status: 'success', statusCode: 200, payload: { from: target.role, to: role } });
      meta.audit.written = true;
      return row;
    });
    // Sessions carry the role in their cached principal: drop them so the change applies at once.
    await this.forgetSessions(updated.id);
    return toMemberResponse(updated);
  }

  async removeMember(scope: Scope, memberId: string, meta: AuditMeta) {
    const { row, sessionKeys } = await this.deps.db.transaction().execute(async (trx) => {
      const target = await this.lockMember(trx, scope, memberId);
      this.assertMayChange(scope, target.role as Role, null);
      if (target.role === 'owner') await this.assertNotLastOwner(trx, scope);
      const sessions = await trx.selectFrom('refresh_tokens').select('session_id').distinct().where('tenant_id', '=', scope.tenantId).where('user_id', '=', target.id).execute();
      // Memories the account owned go with it (rows cascade); keep the projects' counters honest.
      const perProject = await trx.selectFrom('memories').select(['project_id', (eb) => eb.fn.countAll<number>().as('n')]).where('tenant_id', '=', scope.tenantId).where('user_id', '=', target.id).where('project_id', 'is not', null).groupBy('project_id').execute();
      for (const p of perProject) {
        await trx.updateTable('projects').set({ memory_count: sql`greatest(memory_count - ${Number(p.n)}, 0)` }).where('tenant_id', '=', scope.tenantId).where('id', '=', p.project_id as string).execute();
      }
      await trx.deleteFrom('users').where('tenant_id', '=', scope.tenantId).where('id', '=', target.id).execute();
      const task = orgWebhookTask(scope.tenantId, 'team.member_removed', { user_id: target.public_id, email: target.email, role: target.role }, this.deps.clock.now());
      await this.deps.outbox.enqueue(trx, [task]);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'team.member_removed', category: 'org', resourceType: 'user', resourceId: target.public_id, action: 'delete', status: 'success', statusCode: 200, payload: { role: target.role } });
      meta.audit.written = true;
      return { row: { ...target, taskId: task.id }, sessionKeys: sessions.map((s) => principalKey('session', s.session_id)) };
    });
    if (sessionKeys.length) await this.deps.cache.del(...sessionKeys);
    await this.deps.vectors.deleteNamespace(namespaceForUser(row.id)).catch(() => 0);
    await this.deps.outbox.relay([row.taskId]);
    return { removed: true, user_id: row.public_id };
  }

  // ---------------------------------------------------------------- invitations

  async createInvitation(scope: Scope, input: { email: string; role: Role }, meta: AuditMeta) {
    if (input.role === 'owner' && scope.principal.role !== 'owner') throw forbidden('Only an owner can invite an owner', 'INSUFFICIENT_ROLE');
    const email = input.email.trim().toLowerCase();
    const token = `msi_${randomToken(32)}`;
    const now = this.deps.clock.now();
    const expiresAt = new Date(now.getTime() + this.ttlDays * 86_400_000);
    return this.deps.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
      if (existing) throw conflict('An account with this email already exists');
      // A new invitation replaces an earlier pending one for the same address.
      await trx.updateTable('invitations').set({ revoked_at: now }).where('tenant_id', '=', scope.tenantId).where('email', '=', email).where('accepted_at', 'is', null).where('revoked_at', 'is', null).execute();
      const row = await trx
        .insertInto('invitations')
        .values({ tenant_id: scope.tenantId, email, role: input.role, token_hash: sha256Hex(token), invited_by: scope.principal.accountId, created_at: now, expires_at: expiresAt })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'team.invitation_created', category: 'org', resourceType: 'invitation', resourceId: String(row.id), action: 'create', status: 'success', statusCode: 201, payload: { role: row.role } });
      meta.audit.written = true;
      return { ...this.toInvitationResponse(row), token };
    });
  }

  async listInvitations(scope: Scope) {
    const rows = await this.deps.db.selectFrom('invitations').selectAll().where('tenant_id', '=', scope.tenantId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map((r) => this.toInvitationResponse(r));
  }

  async revokeInvitation(scope: Scope, id: number, meta: AuditMeta) {
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx.updateTable('invitations').set({ revoked_at: this.deps.clock.now() }).where('tenant_id', '=', scope.tenantId).where('id', '=', id).where('accepted_at', 'is', null).where('revoked_at', 'is', null).returningAll().executeTakeFirst();
      if (!row) throw notFound('Invitation not found or no longer pending');
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'team.invitation_revoked', category: 'org', resourceType: 'invitation', resourceId: String(id), action: 'revoke', status: 'success', statusCode: 200 });
      meta.audit.written = true;
      return this.toInvitationResponse(row);
    });
  }

  /** Turns a pending invitation into an account of the inviting tenant; the token works once. */
  async acceptInvitation(input: { token: string; password: string; full_name?: string }, meta: AuditMeta) {
    const passwordHash = await hashPassword(input.password);
    const now = this.deps.clock.now();
    const { user, taskId } = await this.deps.db.transaction().execute(async (trx) => {
      const invitation = await trx
        .updateTable('invitations')
        .set({ accepted_at: now })
        .where('token_hash', '=', sha256Hex(input.token))
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      if (!invitation) throw new AppError('INVALID_INVITATION', 400, 'Invitation token is invalid, expired or already used');
      const tenant = await trx.selectFrom('tenants').select('status').where('id', '=', invitation.tenant_id).executeTakeFirst();
      if (tenant?.status !== 'active') throw forbidden('Organization is suspended', 'TENANT_SUSPENDED');
      const taken = await trx.selectFrom('users').select('id').where('email', '=', invitation.email).executeTakeFirst();
      if (taken) throw conflict('An account with this email already exists');
      const created = await trx
        .insertInto('users')
        .values({ public_id: newUserPublicId(), tenant_id: invitation.tenant_id, kind: 'account', external_id: null, email: invitation.email, password_hash: passwordHash, full_name: input.full_name ?? null, role: invitation.role })
        .returningAll()
        .executeTakeFirstOrThrow();
      await trx.updateTable('invitations').set({ accepted_user_id: created.id }).where('id', '=', invitation.id).execute();
      const task = orgWebhookTask(invitation.tenant_id, 'team.member_added', { user_id: created.public_id, email: created.email, role: created.role }, now);
      await this.deps.outbox.enqueue(trx, [task]);
      await writeAudit(trx, { ...auditBase(meta), tenantId: invitation.tenant_id, userId: created.id, principal: `session:${created.public_id}`, eventType: 'team.member_added', category: 'org', resourceType: 'user', resourceId: created.public_id, action: 'create', status: 'success', statusCode: 201, payload: { role: created.role, invitation_id: invitation.id } });
      meta.audit.written = true;
      return { user: created, taskId: task.id };
    });
    await this.deps.outbox.relay([taskId]);
    return { user: toMemberResponse(user) };
  }

  // ---------------------------------------------------------------- API keys

  /** A new secret for the same name, scopes, project lock and expiry; the old secret stops working at once. */
  async rotateApiKey(scope: Scope, id: number, meta: AuditMeta) {
    const { oldRow, newRow, taskIds } = await this.deps.db.transaction().execute(async (trx) => {
      const now = this.deps.clock.now();
      const old = await trx.updateTable('api_keys').set({ revoked_at: now }).where('tenant_id', '=', scope.tenantId).where('id', '=', id).where('revoked_at', 'is', null).returningAll().executeTakeFirst();
      if (!old) throw notFound('API key not found');
      const rotated = newApiKeySecret(old.environment);
      const row = await trx
        .insertInto('api_keys')
        .values({
          tenant_id: scope.tenantId, name: old.name, key_hash: sha256Hex(rotated), key_prefix: rotated.slice(0, 12), environment: old.environment,
          scopes: JSON.stringify(old.scopes), project_id: old.project_id, rate_limit_tier: old.rate_limit_tier, created_by: scope.principal.accountId, expires_at: old.expires_at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const tasks = [
        apiKeyWebhookTask(scope.tenantId, 'api_key.revoked', old, now, { reason: 'rotated' }),
        apiKeyWebhookTask(scope.tenantId, 'api_key.created', row, now, { rotated_from: old.id }),
      ];
      await this.deps.outbox.enqueue(trx, tasks);
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'api_key.rotated', category: 'security', resourceType: 'api_key', resourceId: String(row.id), action: 'rotate', status: 'success', statusCode: 201, payload: { rotated_from: old.id, key_prefix: row.key_prefix } });
      meta.audit.written = true;
      return { oldRow: old, newRow: { ...row, secret: rotated }, taskIds: tasks.map((t) => t.id) };
    });
    await this.deps.cache.del(principalKey('key', oldRow.key_hash));
    await this.deps.outbox.relay(taskIds);
    const { secret: plaintext, ...stored } = newRow;
    return { ...toApiKeyResponse(stored), key: plaintext, rotated_from: oldRow.id };
  }

  // ---------------------------------------------------------------- internals

  private async lockMember(trx: Kysely<Database>, scope: Scope, memberId: string) {
    const row = await trx.selectFrom('users').selectAll().where('tenant_id', '=', scope.tenantId).where('kind', '=', 'account').where('public_id', '=', memberId).forUpdate().executeTakeFirst();
    if (!row) throw notFound('Member not found');
    return row;
  }

  /** Admins manage admins, members and viewers; only an owner touches the owner role. */
  private assertMayChange(scope: Scope, current: Role, next: Role | null) {
    const actor = scope.principal.role;
    if ((current === 'owner' || next === 'owner') && actor !== 'owner') throw forbidden('Only an owner can grant or take away the owner role', 'INSUFFICIENT_ROLE');
    if (!roleAtLeast(actor, current)) throw forbidden('You cannot change a member whose role outranks yours', 'INSUFFICIENT_ROLE');
  }

  private async assertNotLastOwner(trx: Kysely<Database>, scope: Scope) {
    // Locking every owner row serialises two owners demoting each other at the same moment.
    const owners = await trx.selectFrom('users').select('id').where('tenant_id', '=', scope.tenantId).where('kind', '=', 'account').where('role', '=', 'owner').forUpdate().execute();
    if (owners.length <= 1) throw conflict('The last owner of an organization cannot be demoted or removed');
  }

  private async forgetSessions(userId: number) {
    const sessions = await this.deps.db.selectFrom('refresh_tokens').select('session_id').distinct().where('user_id', '=', userId).execute();
    if (sessions.length) await this.deps.cache.del(...sessions.map((s) => principalKey('session', s.session_id)));
  }

  private toInvitationResponse(r: Selectable<InvitationsTable>) {
    const now = this.deps.clock.now();
    const status: InvitationStatus = r.accepted_at ? 'accepted' : r.revoked_at ? 'revoked' : new Date(r.expires_at) <= now ? 'expired' : 'pending';
    return { id: r.id, email: r.email, role: r.role, status, created_at: iso(r.created_at), expires_at: iso(r.expires_at), accepted_at: iso(r.accepted_at), revoked_at: iso(r.revoked_at) };
  }
}
