import { z } from 'zod';
import type { ScimService } from '../../services/scim/scim-service.ts';
import { SCIM_GROUP_SCHEMA, SCIM_LIST_SCHEMA, SCIM_MAX_PAGE, SCIM_USER_SCHEMA } from '../../services/scim/scim-service.ts';
import { SCIM_CONTENT_TYPE } from '../protocol-errors.ts';
import { publicOrigin } from '../public-origin.ts';
import { createScimTokenBody, scimGroupResource, scimIdParam, scimListQuery, scimPatchBody, scimTokenIdParam, scimUserResource } from '../schemas/scim.ts';
import type { RouteContext, RouteDefinition, RouteResult } from '../types.ts';
import { auditMeta, route } from './route.ts';

/** SCIM answers are `application/scim+json` (RFC 7644 §3.1) with the resource's version as ETag. */
function scim(status: number, resource: Record<string, unknown>): RouteResult {
  const meta = resource.meta as { location?: string; version?: string } | undefined;
  const headers: Record<string, string> = { 'Content-Type': SCIM_CONTENT_TYPE };
  if (meta?.version) headers.ETag = meta.version;
  if (status === 201 && meta?.location) headers.Location = meta.location;
  return { status, headers, body: JSON.stringify(resource) };
}

const listResponse = z.object({ schemas: z.array(z.literal(SCIM_LIST_SCHEMA)), totalResults: z.number().int(), itemsPerPage: z.number().int(), startIndex: z.number().int(), Resources: z.array(z.record(z.string(), z.unknown())) });
const scimToken = z.object({ id: z.number().int(), name: z.string(), token_prefix: z.string(), created_at: z.string(), last_used_at: z.string().nullable(), revoked_at: z.string().nullable() });

const SERVICE_PROVIDER_CONFIG = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  documentationUri: '/docs',
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: SCIM_MAX_PAGE },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: false },
  authenticationSchemes: [{ type: 'oauthbearertoken', name: 'Provisioning token', description: 'Bearer token created with POST /org/scim/tokens', primary: true }],
};

export function scimRoutes(scimService: ScimService): RouteDefinition[] {
  const base = (ctx: RouteContext) => publicOrigin(ctx);
  const userRoutes = (kind: 'Users' | 'Groups') => {
    const isUser = kind === 'Users';
    const resource = isUser ? scimUserResource : scimGroupResource;
    const noun = isUser ? 'user' : 'group';
    return [
      route({
        method: 'GET', path: `/scim/v2/${kind}`, summary: `List ${kind} (filter, startIndex, count)`, tags: ['scim'], auth: 'scim', query: scimListQuery, responses: { 200: listResponse },
        handler: async (ctx) => scim(200, isUser ? await scimService.listUsers(ctx.scope!, ctx.query, base(ctx)) : await scimService.listGroups(ctx.scope!, ctx.query, base(ctx))),
      }),
      route({
        method: 'POST', path: `/scim/v2/${kind}`, summary: `Create a ${noun}`, tags: ['scim'], auth: 'scim', body: resource, responses: { 201: resource },
        audit: { event: `scim.${noun}.created`, resource: noun, category: 'security' },
        handler: async (ctx) => scim(201, isUser ? await scimService.createUser(ctx.scope!, ctx.body, base(ctx), auditMeta(ctx)) : await scimService.createGroup(ctx.scope!, ctx.body, base(ctx), auditMeta(ctx))),
      }),
      route({
        method: 'GET', path: `/scim/v2/${kind}/{id}`, summary: `Get a ${noun}`, tags: ['scim'], auth: 'scim', params: scimIdParam, responses: { 200: resource },
        handler: async (ctx) => scim(200, isUser ? await scimService.getUser(ctx.scope!, ctx.params.id, base(ctx)) : await scimService.getGroup(ctx.scope!, ctx.params.id, base(ctx))),
      }),
      route({
        method: 'PUT', path: `/scim/v2/${kind}/{id}`, summary: `Replace a ${noun}`, tags: ['scim'], auth: 'scim', params: scimIdParam, body: resource, responses: { 200: resource },
        audit: { event: `scim.${noun}.replaced`, resource: noun, category: 'security' },
        handler: async (ctx) => scim(200, isUser ? await scimService.replaceUser(ctx.scope!, ctx.params.id, ctx.body, base(ctx), auditMeta(ctx)) : await scimService.replaceGroup(ctx.scope!, ctx.params.id, ctx.body, base(ctx), auditMeta(ctx))),
      }),
      route({
        method: 'PATCH', path: `/scim/v2/${kind}/{id}`, summary: `Modify a ${noun} with a PatchOp (add, replace, remove)`, tags: ['scim'], auth: 'scim', params: scimIdParam, body: scimPatchBody, responses: { 200: resource },
        audit: { event: `scim.${noun}.patched`, resource: noun, category: 'security' },
        handler: async (ctx) => scim(200, isUser ? await scimService.patchUser(ctx.scope!, ctx.params.id, ctx.body.Operations, base(ctx), auditMeta(ctx)) : await scimService.patchGroup(ctx.scope!, ctx.params.id, ctx.body.Operations, base(ctx), auditMeta(ctx))),
      }),
      route({
        method: 'DELETE', path: `/scim/v2/${kind}/{id}`, summary: `Delete a ${noun}`, tags: ['scim'], auth: 'scim', params: scimIdParam, responses: { 204: null },
        audit: { event: `scim.${noun}.deleted`, resource: noun, category: 'security' },
        handler: async (ctx) => {
          ctx.audit.resourceId = ctx.params.id;
          if (isUser) await scimService.deleteUser(ctx.scope!, ctx.params.id, auditMeta(ctx));
          else await scimService.deleteGroup(ctx.scope!, ctx.params.id, auditMeta(ctx));
          return { status: 204 };
        },
      }),
    ];
  };

  return [
    route({
      method: 'GET', path: '/scim/v2/ServiceProviderConfig', summary: 'What this SCIM service supports', tags: ['scim'], auth: 'public', responses: { 200: z.record(z.string(), z.unknown()) },
      handler: async () => scim(200, SERVICE_PROVIDER_CONFIG),
    }),
    route({
      method: 'GET', path: '/scim/v2/ResourceTypes', summary: 'The resource types: User and Group', tags: ['scim'], auth: 'public', responses: { 200: listResponse },
      handler: async (ctx) => {
        const types = [['User', 'Users', SCIM_USER_SCHEMA], ['Group', 'Groups', SCIM_GROUP_SCHEMA]].map(([name, endpoint, schema]) => ({
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: name, name, endpoint: `/${endpoint}`, schema,
          meta: { resourceType: 'ResourceType', location: `${base(ctx)}/scim/v2/ResourceTypes/${name}` },
        }));
        return scim(200, { schemas: [SCIM_LIST_SCHEMA], totalResults: types.length, itemsPerPage: types.length, startIndex: 1, Resources: types });
      },
    }),
    ...userRoutes('Users'),
    ...userRoutes('Groups'),

    // ------------------------------------------------------------ provisioning tokens (signed-in admins)
    route({
      method: 'POST', path: '/org/scim/tokens', summary: 'Create a SCIM provisioning token (shown once, stored hashed)', tags: ['scim'], auth: 'session', minRole: 'admin',
      body: createScimTokenBody, responses: { 201: scimToken.extend({ token: z.string() }) }, audit: { event: 'scim_token.created', resource: 'scim_token', category: 'security' },
      handler: async (ctx) => ({ status: 201, body: await scimService.createToken(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      method: 'GET', path: '/org/scim/tokens', summary: 'List SCIM provisioning tokens (no secrets)', tags: ['scim'], auth: 'session', minRole: 'admin', responses: { 200: z.array(scimToken) },
      handler: async (ctx) => ({ status: 200, body: await scimService.listTokens(ctx.scope!) }),
    }),
    route({
      method: 'DELETE', path: '/org/scim/tokens/{id}', summary: 'Revoke a SCIM provisioning token', tags: ['scim'], auth: 'session', minRole: 'admin', params: scimTokenIdParam,
      responses: { 200: scimToken.extend({ revoked: z.literal(true) }) }, audit: { event: 'scim_token.revoked', resource: 'scim_token', category: 'security' },
      handler: async (ctx) => {
        ctx.audit.resourceId = String(ctx.params.id);
        return { status: 200, body: { ...(await scimService.revokeToken(ctx.scope!, ctx.params.id, auditMeta(ctx))), revoked: true } };
      },
    }),
  ];
}
