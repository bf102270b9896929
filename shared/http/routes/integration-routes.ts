import { z } from 'zod';
import type { IntegrationService } from '../../services/integration-service.ts';
import { publicOrigin } from '../public-origin.ts';
import {
  authorizationStartResponse, connectBody, oauthCallbackQuery, connectionIdParam, connectionResponse, crawlJobBody, crawlJobIdParam, crawlJobResponse, disconnectQuery, providerParam,
} from '../schemas/integrations.ts';
import { paginationQuery } from '../schemas/org.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

/** Sessions: viewers read, members sync and crawl, admins connect and disconnect. Keys: memories:read / memories:write. */
const read = { tags: ['integrations'], auth: 'any' as const, scopes: ['memories:read'], minRole: 'viewer' as const };
const run = { tags: ['integrations'], auth: 'any' as const, scopes: ['memories:write'], minRole: 'member' as const };
const manage = { tags: ['integrations'], auth: 'any' as const, scopes: ['memories:write'], minRole: 'admin' as const };

/** Integrations and the web crawler (API.md §2.7); the work runs in the integration-sync worker. */
export function integrationRoutes(integrations: IntegrationService): RouteDefinition[] {
  return [
    route({
      ...read, method: 'GET', path: '/api/v1/integrations', summary: "The organisation's integration connections (tokens are never returned)",
      query: z.object(paginationQuery), responses: { 200: z.object({ items: z.array(connectionResponse), total: z.number(), limit: z.number(), offset: z.number() }) },
      handler: async (ctx) => ({ status: 200, body: await integrations.list(ctx.scope!, ctx.query) }),
    }),
    route({
      ...manage, method: 'POST', path: '/api/v1/integrations/{provider}/connect',
      summary: "Connect a provider for one end user: with access_token (stored encrypted) at once, or without it through the provider's authorization page (answers its URL)",
      params: providerParam, body: connectBody, responses: { 201: connectionResponse, 200: authorizationStartResponse }, audit: { event: 'integration.connected', resource: 'integration', category: 'data' },
      handler: async (ctx) => {
        const { access_token: accessToken, ...rest } = ctx.body;
        if (accessToken) return { status: 201, body: await integrations.connect(ctx.scope!, ctx.params.provider, { ...rest, access_token: accessToken }, auditMeta(ctx)) };
        const redirectUri = `${publicOrigin(ctx)}/api/v1/integrations/${ctx.params.provider}/callback`;
        return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: await integrations.startOAuthConnect(ctx.scope!, ctx.params.provider, rest, redirectUri, auditMeta(ctx)) };
      },
    }),
    route({
      method: 'GET', path: '/api/v1/integrations/{provider}/callback', tags: ['integrations'], auth: 'public',
      summary: "The provider's redirect after authorization: the code is exchanged, tokens stored encrypted, the initial sync queued (the state names the organisation)",
      params: providerParam, query: oauthCallbackQuery, responses: { 201: connectionResponse }, audit: { event: 'integration.connected', resource: 'integration', category: 'data' },
      handler: async (ctx) => {
        const redirectUri = `${publicOrigin(ctx)}/api/v1/integrations/${ctx.params.provider}/callback`;
        return { status: 201, headers: { 'Cache-Control': 'no-store' }, body: await integrations.completeOAuthConnect(ctx.params.provider, ctx.query, redirectUri, auditMeta(ctx)) };
      },
    }),
    route({
      ...read, method: 'GET', path: '/api/v1/integrations/{id}', summary: 'One connection: status, last sync, counts, last error',
      params: connectionIdParam, responses: { 200: connectionResponse },
      handler: async (ctx) => ({ status: 200, body: await integrations.get(ctx.scope!, ctx.params.id) }),
    }),
    route({
      ...run, method: 'POST', path: '/api/v1/integrations/{id}/sync', summary: 'Queue a sync of this connection now',
      params: connectionIdParam, bodyFormat: 'none', responses: { 202: z.object({ id: z.string(), status: z.literal('queued'), task_id: z.string() }) },
      audit: { event: 'integration.sync_requested', resource: 'integration', category: 'data' },
      handler: async (ctx) => ({ status: 202, body: await integrations.requestSync(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
    route({
      ...manage, method: 'DELETE', path: '/api/v1/integrations/{id}', summary: 'Disconnect; synced memories stay unless ?purge=true',
      params: connectionIdParam, query: disconnectQuery, responses: { 200: z.object({ id: z.string(), deleted: z.literal(true), memories_purged: z.number() }) },
      audit: { event: 'integration.disconnected', resource: 'integration', category: 'data' },
      handler: async (ctx) => ({ status: 200, body: await integrations.disconnect(ctx.scope!, ctx.params.id, ctx.query.purge, auditMeta(ctx)) }),
    }),
    route({
      ...run, method: 'POST', path: '/api/v1/crawler/jobs', summary: 'Crawl a public site (same origin, robots.txt honoured, at most 100 pages) into memories',
      body: crawlJobBody, responses: { 202: crawlJobResponse }, audit: { event: 'crawler.job_created', resource: 'crawl_job', category: 'data' },
      handler: async (ctx) => ({ status: 202, body: await integrations.createCrawlJob(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      ...read, method: 'GET', path: '/api/v1/crawler/jobs/{id}', summary: 'A crawl job: status, pages fetched and skipped (with reasons)',
      params: crawlJobIdParam, responses: { 200: crawlJobResponse },
      handler: async (ctx) => ({ status: 200, body: await integrations.getCrawlJob(ctx.scope!, ctx.params.id) }),
    }),
  ];
}
