import { z } from 'zod';
import type { WebhookService } from '../../services/webhook-service.ts';
import {
  createdWebhookResponse, createWebhookBody, deliveriesQuery, deliveryIdParam, updateWebhookBody, webhookIdParam, webhookResponse,
} from '../schemas/webhooks.ts';
import { paginationQuery } from '../schemas/org.ts';
import type { RouteDefinition } from '../types.ts';
import { auditMeta, route } from './route.ts';

const listOf = (item: z.ZodType) => z.object({ items: z.array(item), total: z.number(), limit: z.number(), offset: z.number() });
const queued = z.object({ status: z.literal('queued'), delivery_id: z.string() }).passthrough();
/** Sessions: viewers read, admins and owners change. API keys: the `webhooks:manage` scope. */
const read = { tags: ['webhooks'], auth: 'any' as const, scopes: ['webhooks:manage'], minRole: 'viewer' as const };
const write = { tags: ['webhooks'], auth: 'any' as const, scopes: ['webhooks:manage'], minRole: 'admin' as const };

/** Webhook endpoint management (API.md §2.5 Webhooks); delivery itself runs in the webhook-delivery worker. */
export function webhookRoutes(webhooks: WebhookService): RouteDefinition[] {
  return [
    route({
      ...write, method: 'POST', path: '/org/webhooks', summary: 'Create a webhook endpoint (signing secret shown once)',
      body: createWebhookBody, responses: { 201: createdWebhookResponse }, audit: { event: 'webhook.created', resource: 'webhook', category: 'org' },
      handler: async (ctx) => ({ status: 201, body: await webhooks.create(ctx.scope!, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      ...read, method: 'GET', path: '/org/webhooks', summary: "The tenant's webhook endpoints", query: z.object(paginationQuery), responses: { 200: listOf(webhookResponse) },
      handler: async (ctx) => ({ status: 200, body: await webhooks.list(ctx.scope!, ctx.query) }),
    }),
    route({
      ...read, method: 'GET', path: '/org/webhooks/{id}', summary: 'One webhook endpoint', params: webhookIdParam, responses: { 200: webhookResponse },
      handler: async (ctx) => ({ status: 200, body: await webhooks.get(ctx.scope!, ctx.params.id) }),
    }),
    route({
      ...write, method: 'PATCH', path: '/org/webhooks/{id}', summary: 'Change a webhook endpoint; active: true re-enables a disabled one',
      params: webhookIdParam, body: updateWebhookBody, responses: { 200: webhookResponse }, audit: { event: 'webhook.updated', resource: 'webhook', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await webhooks.update(ctx.scope!, ctx.params.id, ctx.body, auditMeta(ctx)) }),
    }),
    route({
      ...write, method: 'DELETE', path: '/org/webhooks/{id}', summary: 'Delete a webhook endpoint and its delivery log',
      params: webhookIdParam, responses: { 200: z.object({ id: z.string(), deleted: z.literal(true) }) }, audit: { event: 'webhook.deleted', resource: 'webhook', category: 'org' },
      handler: async (ctx) => ({ status: 200, body: await webhooks.delete(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
    route({
      ...read, method: 'GET', path: '/org/webhooks/{id}/deliveries', summary: 'Delivery log: every attempt with status code, latency and error',
      params: webhookIdParam, query: deliveriesQuery, responses: { 200: listOf(z.record(z.string(), z.unknown())) },
      handler: async (ctx) => ({ status: 200, body: await webhooks.listDeliveries(ctx.scope!, ctx.params.id, ctx.query) }),
    }),
    route({
      ...write, method: 'POST', path: '/org/webhooks/{id}/test', summary: 'Queue a webhook.test delivery to this endpoint',
      params: webhookIdParam, bodyFormat: 'none', responses: { 202: queued }, audit: { event: 'webhook.test_sent', resource: 'webhook', category: 'org' },
      handler: async (ctx) => ({ status: 202, body: await webhooks.sendTest(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
    route({
      ...write, method: 'POST', path: '/org/webhooks/deliveries/{id}/replay', summary: 'Queue a dead-lettered (or delivered) delivery again',
      params: deliveryIdParam, bodyFormat: 'none', responses: { 202: queued }, audit: { event: 'webhook.delivery_replayed', resource: 'webhook_delivery', category: 'org' },
      handler: async (ctx) => ({ status: 202, body: await webhooks.replay(ctx.scope!, ctx.params.id, auditMeta(ctx)) }),
    }),
  ];
}
