import type { BillingService } from '../../services/billing-service.ts';
import type { OrgService } from '../../services/org-service.ts';
import { listAuditLogs } from '../../services/audit-log-reader.ts';
import type { UsageService } from '../../services/usage-service.ts';
import type { Db } from '../../ports/db.ts';
import { apiKeyIdParam } from '../schemas/identity.ts';
import { acceptInvitationBody, auditLogQuery, createInvitationBody, invitationIdParam, memberIdParam, updateBillingBody, updateMemberBody } from '../schemas/org.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

/**
 * Organisation routes: team members and invitations, API key rotation, the tenant's audit log and
 * billing. Role rules (sessions): viewer reads, admin manages team and keys, owner changes the plan.
 */
export function orgRoutes(deps: { db: Db; org: OrgService; billing: BillingService; usage: UsageService }): RouteDefinition[] {
  const { org, billing, usage } = deps;
  return [
    // ------------------------------------------------------------ members and invitations
    route({
      method: 'GET', path: '/org/members', summary: 'List the accounts of the organization', tags: ['org'], auth: 'session', minRole: 'viewer',
      handler: async (ctx) => ({ status: 200, body: await org.listMembers(ctx.scope!) }),
    }),
    route({
      method: 'PATCH', path: '/org/members/{user_id}', summary: "Change a member's role", tags: ['org'], auth: 'session', minRole: 'admin',
      params: memberIdParam, body: updateMemberBody, audit: { event: 'team.member_role_changed', resource: 'user', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await org.updateMemberRole(ctx.scope!, ctx.params.user_id, ctx.body.role, auditMeta(ctx)) }),
    }),
    route({
      method: 'DELETE', path: '/org/members/{user_id}', summary: 'Remove a member (their sessions end at once)', tags: ['org'], auth: 'session', minRole: 'admin',
      params: memberIdParam, audit: { event: 'team.member_removed', resource: 'user', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await org.removeMember(ctx.scope!, ctx.params.user_id, auditMeta(ctx)) }),
    }),
    route({
      method: 'POST', path: '/org/invitations', summary: 'Invite someone by email (token shown once, valid 7 days)', tags: ['org'], auth: 'session', minRole: 'admin',
      body: createInvitationBody, audit: { event: 'team.invitation_created', resource: 'invitation', category: 'org' },
      handler: async (ctx) => ({ status: 201, body: await org.createInvitation(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/org/invitations', summary: 'List invitations and their status', tags: ['org'], auth: 'session', minRole: 'admin',
      handler: async (ctx) => ({ status: 200, body: await org.listInvitations(ctx.scope!) }),
    }),
    route({
      method: 'DELETE', path: '/org/invitations/{id}', summary: 'Revoke a pending invitation', tags: ['org'], auth: 'session', minRole: 'admin',
      params: invitationIdParam, audit: { event: 'team.invitation_revoked', resource: 'invitation', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await org.revokeInvitation(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
    route({
      method: 'POST', path: '/auth/invitations/accept', summary: 'Accept an invitation: creates the account in the inviting organization', tags: ['auth'], auth: 'public',
      body: acceptInvitationBody, audit: { event: 'team.member_added', resource: 'user', category: 'org' },
      handler: async (ctx) => ({ status: 201, body: await org.acceptInvitation(ctx.body, auditMeta(ctx)) }),
    }),

    // ------------------------------------------------------------ API keys
    route({
      method: 'POST', path: '/org/api-keys/{id}/rotate', summary: 'Rotate an API key: new secret, old one revoked at once', tags: ['org'], auth: 'session', minRole: 'admin',
      bodyFormat: 'none', params: apiKeyIdParam, audit: { event: 'api_key.rotated', resource: 'api_key', category: 'security' },
      handler: async (ctx) => ({ status: 201, body: await org.rotateApiKey(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),

    // ------------------------------------------------------------ audit log
    route({
      method: 'GET', path: '/org/audit-logs', summary: "The organization's audit log, newest first", tags: ['org'], auth: 'any', scopes: ['audit:read'], minRole: 'admin',
      query: auditLogQuery,
      handler: async (ctx) => {
        const q = ctx.query;
        return { status: 200, body: await listAuditLogs(deps.db.kysely, { tenantId: ctx.scope!.tenantId, eventType: q.event_type, category: q.category, status: q.status, since: q.since, until: q.until, limit: q.limit, offset: q.offset }) };
      },
    }),

    // ------------------------------------------------------------ billing
    route({
      method: 'GET', path: '/org/billing', summary: 'Plan, quota mode, monthly usage and plan limits', tags: ['org'], auth: 'any', scopes: ['projects:read'], minRole: 'viewer',
      handler: async (ctx) => ({ status: 200, body: await billing.overview(ctx.scope!.tenantId) }),
    }),
    route({
      method: 'GET', path: '/org/billing/usage', summary: 'Monthly usage and plan limits', tags: ['org'], auth: 'any', scopes: ['projects:read'], minRole: 'viewer',
      handler: async (ctx) => ({ status: 200, body: await usage.summary(ctx.scope!.tenantId) }),
    }),
    route({
      method: 'PATCH', path: '/org/billing', summary: 'Change the plan or quota mode (owner)', tags: ['org'], auth: 'session', minRole: 'owner',
      body: updateBillingBody, audit: { event: 'billing.plan_changed', resource: 'tenant', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await billing.update(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
  ];
}
