import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { route } from '#shared/http/routes/route.ts';
import { routeSchemaProblems } from '#shared/http/routes/openapi-routes.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/**
 * Body-less POST routes of other route groups that do not declare `bodyFormat: 'none'` yet (asked of
 * their owners); a path-parameter problem is never excused, and any other route without a body
 * schema fails the check.
 */
const AWAITING_DECLARATION = new Set<string>([]);

describe('OpenAPI document and /docs', () => {
  let server: TestServer;
  let doc: any;

  beforeAll(async () => {
    server = await startTestServer();
    doc = (await server.call('GET', '/openapi.json')).body;
  });
  afterAll(() => server.stop());

  it('is a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator)', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every registered route with its security, inputs and error responses', () => {
    const routes = server.app.router.routes;
    for (const r of routes) {
      const op = doc.paths[r.path]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      if (r.auth === 'public') expect(op.security).toEqual([]);
      else expect(op.responses['401'], `${r.method} ${r.path}`).toBeDefined();
      if (r.body) expect(op.requestBody?.content, `${r.method} ${r.path}`).toBeDefined();
    }
    const token = doc.paths['/oauth/token'].post;
    expect(Object.keys(token.requestBody.content)).toEqual(['application/x-www-form-urlencoded']);
    expect(doc.paths['/scim/v2/Users'].get.security).toEqual([{ ScimToken: [] }]);
    expect(doc.paths['/memory/add'].post.security).toEqual(expect.arrayContaining([{ ApiKey: [] }, { OAuth2: ['memories:write'] }]));
    expect(doc.paths['/memory/add'].post.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['X-End-User-ID', 'X-Project-ID']));
    expect(doc.paths['/org/oauth/apps'].post['x-min-role']).toBe('admin');
    expect(doc.components.securitySchemes.OAuth2.flows.authorizationCode.tokenUrl).toBe('/oauth/token');
    const operationIds = Object.values<Record<string, any>>(doc.paths).flatMap((item) => METHODS.filter((m) => item[m]).map((m) => item[m].operationId));
    expect(new Set(operationIds).size).toBe(operationIds.length);
  });

  it('has no route whose body or path parameters lack a schema', () => {
    const problems = routeSchemaProblems(server.app.router.routes);
    expect(problems.filter((p) => !AWAITING_DECLARATION.has(p.slice(0, p.indexOf(':'))))).toEqual([]);
    // an entry leaves the list once its route declares `bodyFormat: 'none'`
    const stillOpen = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))));
    expect([...AWAITING_DECLARATION].filter((r) => server.app.router.routes.some((d) => `${d.method} ${d.path}` === r) && !stillOpen.has(r))).toEqual([]);
  });

  it('the route-table check catches a route without a params schema or a body schema', () => {
    const handler = async () => ({ status: 200 });
    const problems = routeSchemaProblems([
      route({ method: 'GET', path: '/things/{id}', summary: 'no params schema', auth: 'any', handler }),
      route({ method: 'POST', path: '/things', summary: 'no body schema', auth: 'any', handler }),
      route({ method: 'PATCH', path: '/things/{id}', summary: 'params without the id', auth: 'any', params: z.object({ other: z.string() }), body: z.object({}), handler }),
      route({ method: 'POST', path: '/things/{id}/ping', summary: 'declared body-less', auth: 'any', params: z.object({ id: z.string() }), bodyFormat: 'none', handler }),
    ]);
    expect(problems).toEqual([
      'GET /things/{id}: path parameter {id} has no params schema',
      "POST /things: no body schema (declare bodyFormat: 'none' if it takes no body)",
      'PATCH /things/{id}: path parameter {id} has no params schema',
    ]);
  });

  it('answers every documented route (never the router’s 404 or 405)', async () => {
    const unanswered: string[] = [];
    let calls = 0;
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'file' ? 'init.js' : '1'));
        const res = await server.call(method.toUpperCase(), concrete, method === 'get' || method === 'delete' ? {} : { body: {} });
        calls++;
        if (res.status === 405 || (res.status === 404 && JSON.stringify(res.body).includes('No route for'))) unanswered.push(`${method.toUpperCase()} ${path} → ${res.status}`);
      }
    }
    expect(unanswered).toEqual([]);
    expect(calls).toBe(server.app.router.routes.length);
  });

  it('serves a reference page whose assets come from this server, under a CSP that allows only them', async () => {
    const page = await server.call('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.body).not.toMatch(/https?:\/\//); // no CDN
    const srcs = [...String(page.body).matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(srcs).toEqual(['docs/assets/swagger-ui.css', 'docs/assets/swagger-ui-bundle.js', 'docs/assets/init.js']);
    for (const src of srcs) {
      const asset = await server.call('GET', `/${src}`);
      expect(asset.status, src).toBe(200);
    }
    expect((await server.call('GET', '/docs/assets/swagger-ui-bundle.js')).body).toContain('SwaggerUIBundle');
    expect((await server.call('GET', '/docs/assets/init.js')).body).toContain('/openapi.json');
    expect((await server.call('GET', '/docs/assets/secret.env')).status).toBe(422);
  });
});
