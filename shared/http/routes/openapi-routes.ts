import { OpenApiGeneratorV31, OpenAPIRegistry, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { DOCS_ASSETS, DOCS_CSP, docsAsset, docsPage, type DocsAsset } from '../docs-assets.ts';
import { errorEnvelope } from '../schemas/common.ts';
import type { RouteDefinition } from '../types.ts';
import { route } from './route.ts';
import { VERSION } from './health-routes.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH']);
const OAUTH_SCOPE_DESCRIPTIONS = {
  'memories:read': 'Query and read memories of end users',
  'memories:write': 'Add, change and forget memories',
  'projects:read': 'List and read projects',
  'projects:write': 'Create, change and delete projects',
};

/**
 * Routes whose inputs are not fully described: a path parameter without a params schema naming it,
 * or a POST/PUT/PATCH without a body schema that does not declare `bodyFormat: 'none'`. The OpenAPI
 * test fails on any of these, so an undocumented input cannot slip into the route table.
 */
export function routeSchemaProblems(routes: readonly RouteDefinition[]): string[] {
  const problems: string[] = [];
  for (const r of routes) {
    const id = `${r.method} ${r.path}`;
    const names = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const shape = r.params instanceof z.ZodObject ? (r.params.shape as Record<string, unknown>) : undefined;
    for (const name of names) {
      if (!shape || !(name in shape)) problems.push(`${id}: path parameter {${name}} has no params schema`);
    }
    if (MUTATING.has(r.method) && !r.body && r.bodyFormat !== 'none') problems.push(`${id}: no body schema (declare bodyFormat: 'none' if it takes no body)`);
    if (r.body && r.bodyFormat === 'none') problems.push(`${id}: bodyFormat 'none' but a body schema`);
  }
  return problems;
}

const jsonSchema = (s: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
const content = (schema: Record<string, unknown>, types: string[]) => Object.fromEntries(types.map((t) => [t, { schema }]));

function securityOf(r: RouteDefinition): Array<Record<string, string[]>> {
  switch (r.auth) {
    case 'public': return [];
    case 'session': return [{ Bearer: [] }, { SessionCookie: [] }];
    case 'platform-admin': return [{ Bearer: [] }];
    case 'scim': return [{ ScimToken: [] }];
    default: {
      const scopes = [...(r.scopes ?? [])];
      return [{ ApiKey: [] }, { Bearer: [] }, { SessionCookie: [] }, ...(scopes.every((s) => s in OAUTH_SCOPE_DESCRIPTIONS) ? [{ OAuth2: scopes }] : [])];
    }
  }
}

function responsesOf(r: RouteDefinition): Record<string, ResponseConfig> {
  const mediaTypes = r.auth === 'scim' || r.path.startsWith('/scim/') ? ['application/scim+json'] : ['application/json'];
  const error = (description: string) => ({ description, content: content({ $ref: '#/components/schemas/Error' }, mediaTypes) });
  const out: Record<string, ResponseConfig> = {};
  const declared = Object.entries(r.responses ?? { 200: undefined });
  for (const [status, schema] of declared) {
    const description = status === '204' ? 'No content' : status.startsWith('3') ? 'Redirect (see the Location header)' : status === '201' ? 'Created' : status === '202' ? 'Accepted' : 'Success';
    out[status] = schema ? { description, content: content(jsonSchema(schema, 'output'), mediaTypes) } : { description };
  }
  if (r.endUser) out[400] = error('Missing or invalid X-End-User-ID (API-key callers)');
  if (r.auth !== 'public') {
    out[401] = error('Missing or invalid credentials');
    out[403] = error(r.auth === 'session' ? 'Needs a signed-in session' + (r.minRole ? ` with role ${r.minRole} or higher` : '') : r.scopes?.length ? `Missing scope (${r.scopes.join(', ')}) or role` : 'Not allowed');
  }
  if (r.params) out[404] = error('Not found in this tenant');
  if (r.body || r.query || r.params) out[r.auth === 'scim' || r.path === '/oauth/token' ? 400 : 422] = error('Invalid input');
  out[429] = error('Rate limit exceeded');
  return out;
}

function requestBodyOf(r: RouteDefinition) {
  if (!r.body) return undefined;
  const types = r.bodyFormat === 'form' ? ['application/x-www-form-urlencoded'] : r.auth === 'scim' ? ['application/scim+json', 'application/json'] : ['application/json'];
  return { required: true, content: content(jsonSchema(r.body, 'input'), types) };
}

function headersOf(r: RouteDefinition) {
  if (!r.endUser) return undefined;
  return z.object({
    'X-End-User-ID': z.string().max(256).optional().describe('The end user who owns the memories (required with API keys and OAuth tokens; ignored for sessions)'),
    'X-Project-ID': z.string().max(64).optional().describe('Project scope; defaults to the key lock or org-wide'),
  });
}

/** Builds the OpenAPI 3.1 document from the same zod schemas the routes validate with. */
export function buildOpenApiDocument(routes: readonly RouteDefinition[]) {
  const registry = new OpenAPIRegistry();
  // The contract's envelope (SCIM and the token endpoint answer in their own standard shapes; see docs/identity.md).
  registry.registerComponent('schemas', 'Error', jsonSchema(errorEnvelope, 'output') as never);
  registry.registerComponent('securitySchemes', 'ApiKey', { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'ms_live_… / ms_test_… keys from POST /org/api-keys' });
  registry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from /auth/login, /auth/refresh or an SSO callback' });
  registry.registerComponent('securitySchemes', 'SessionCookie', { type: 'apiKey', in: 'cookie', name: 'ms_session', description: 'Browser session; state-changing requests also send X-CSRF-Token' });
  registry.registerComponent('securitySchemes', 'ScimToken', { type: 'http', scheme: 'bearer', description: 'SCIM provisioning token from POST /org/scim/tokens' });
  registry.registerComponent('securitySchemes', 'OAuth2', {
    type: 'oauth2',
    flows: {
      authorizationCode: { authorizationUrl: '/oauth/authorize', tokenUrl: '/oauth/token', scopes: OAUTH_SCOPE_DESCRIPTIONS },
      clientCredentials: { tokenUrl: '/oauth/token', scopes: OAUTH_SCOPE_DESCRIPTIONS },
    },
  });
  for (const r of routes) {
    const headers = headersOf(r);
    const body = requestBodyOf(r);
    registry.registerPath({
      method: r.method.toLowerCase() as 'get',
      path: r.path,
      operationId: `${r.method.toLowerCase()}${r.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: r.summary,
      tags: r.tags,
      security: securityOf(r),
      ...(r.minRole ? { 'x-min-role': r.minRole } : {}),
      ...(r.scopes?.length ? { 'x-required-scopes': r.scopes } : {}),
      // Bodies and responses use zod's own JSON Schema output (it understands transforms and refinements);
      // params, query and headers go through zod-to-openapi, which turns each object key into a parameter.
      request: {
        ...(r.params ? { params: r.params as z.ZodObject } : {}),
        ...(r.query ? { query: r.query as z.ZodObject } : {}),
        ...(headers ? { headers } : {}),
        ...(body ? { body } : {}),
      } as never,
      responses: responsesOf(r),
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'MemorySync-compatible API', version: VERSION, description: 'Self-hosted MemorySync memory API on AWS primitives. Reference page: /docs.' },
    servers: [{ url: '/' }],
  });
}

const docsAssetParam = z.object({ file: z.enum(Object.keys(DOCS_ASSETS) as [DocsAsset, ...DocsAsset[]]) });

/** `/openapi.json`, the `/docs` page that renders it (Swagger UI from node_modules) and the page's assets. */
export function openApiRoutes(getRoutes: () => readonly RouteDefinition[]): RouteDefinition[] {
  let cached: unknown;
  const own: RouteDefinition[] = [
    route({
      method: 'GET', path: '/openapi.json', summary: 'This OpenAPI document', tags: ['meta'], auth: 'public', responses: { 200: z.record(z.string(), z.unknown()) },
      handler: async () => {
        cached ??= buildOpenApiDocument([...getRoutes(), ...own]);
        return { status: 200, body: cached };
      },
    }),
    route({
      method: 'GET', path: '/docs', summary: 'API reference page (renders /openapi.json)', tags: ['meta'], auth: 'public', responses: { 200: null },
      handler: async (ctx) => ({
        status: 200,
        headers: { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': DOCS_CSP },
        body: docsPage(ctx.event.path),
      }),
    }),
    route({
      method: 'GET', path: '/docs/assets/{file}', summary: 'Script and style of the reference page', tags: ['meta'], auth: 'public', params: docsAssetParam, responses: { 200: null },
      handler: async (ctx) => {
        const file = ctx.params.file as DocsAsset;
        const text = await docsAsset(file);
        if (text === undefined) throw new AppError('DOCS_UNAVAILABLE', 503, 'The reference page assets (swagger-ui-dist) are not deployed with this function');
        return { status: 200, headers: { 'Content-Type': DOCS_ASSETS[file], 'Cache-Control': 'public, max-age=86400' }, body: text };
      },
    }),
  ];
  return own;
}
