import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { errorEnvelope } from '../schemas/common.ts';
import type { RouteDefinition } from '../types.ts';
import { route } from './route.ts';
import { VERSION } from './health-routes.ts';

/** Builds the OpenAPI 3.1 document from the same zod schemas the routes validate with. */
export function buildOpenApiDocument(routes: readonly RouteDefinition[]) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'ApiKey', { type: 'apiKey', in: 'header', name: 'X-API-Key' });
  registry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  for (const r of routes) {
    const path = r.path;
    const io = (s: z.ZodType | undefined) => (s ? z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) : undefined);
    const body = io(r.body);
    registry.registerPath({
      method: r.method.toLowerCase() as 'get',
      path,
      summary: r.summary,
      tags: r.tags,
      security: r.auth === 'public' ? [] : [{ ApiKey: [] }, { Bearer: [] }],
      // Bodies use zod's own JSON Schema output (it understands transforms and refinements); params and query
      // go through zod-to-openapi, which turns each object key into a parameter.
      request: {
        ...(r.params ? { params: r.params as z.ZodObject } : {}),
        ...(r.query ? { query: r.query as z.ZodObject } : {}),
        ...(body ? { body: { content: { 'application/json': { schema: body } } } } : {}),
      } as never,
      responses: {
        200: { description: 'Success' },
        ...(r.auth === 'public' ? {} : { 401: { description: 'Missing or invalid credentials', content: { 'application/json': { schema: errorEnvelope } } } }),
        422: { description: 'Validation error', content: { 'application/json': { schema: errorEnvelope } } },
      },
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'MemorySync-compatible API', version: VERSION, description: 'Self-hosted MemorySync memory API on AWS primitives.' },
  });
}

export function openApiRoutes(getRoutes: () => readonly RouteDefinition[]): RouteDefinition[] {
  let cached: unknown;
  return [
    route({
      method: 'GET', path: '/openapi.json', summary: 'This OpenAPI document', tags: ['meta'], auth: 'public',
      handler: async () => {
        cached ??= buildOpenApiDocument(getRoutes());
        return { status: 200, body: cached };
      },
    }),
  ];
}
