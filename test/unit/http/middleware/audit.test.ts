import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import { forbidden, notFound, unauthorized, validationError } from '#shared/errors.ts';
import { createDispatcher } from '#shared/http/dispatch.ts';
import { audit } from '#shared/http/middleware/audit.ts';
import { errorHandler } from '#shared/http/middleware/error-handler.ts';
import { requestId } from '#shared/http/middleware/request-id.ts';
import { Router } from '#shared/http/router.ts';
import type { RouteDefinition } from '#shared/http/types.ts';
import type { Db } from '#shared/ports/db.ts';
import { writeAudit } from '#shared/services/audit.ts';
import type { Principal } from '#shared/services/scope.ts';
import { apiEvent } from '../../../support/events.ts';
import { apiKeyPrincipal, given, handlerWith, silentLogger } from '../middy-harness.ts';

const SECRET_TEXT = 'Door code for the storage unit is 7291, do not share';

describe('audit middleware', () => {
  let db: Db;
  let withKey: ReturnType<typeof handlerWith>;
  let anonymous: ReturnType<typeof handlerWith>;
  const principal: Principal = apiKeyPrincipal({ apiKeyId: 77 });

  const routes: RouteDefinition[] = [
    {
      method: 'POST', path: '/memory/add', summary: 'add', auth: 'any', audit: { event: 'memory.created', resource: 'memory', category: 'data' },
      handler: async (ctx) => {
        ctx.audit.resourceId = '42';
        return { status: 201, body: { id: 42, text: SECRET_TEXT } };
      },
    },
    { method: 'POST', path: '/memory/bulk-add', summary: 'bulk', auth: 'any', handler: async () => { throw validationError('items: Field required', [{ loc: ['items'], msg: 'Field required' }]); } },
    { method: 'POST', path: '/memory/query', summary: 'crash', auth: 'any', handler: async () => { throw new TypeError("Cannot read properties of undefined (reading 'vector')"); } },
    { method: 'DELETE', path: '/memory/{id}', summary: 'delete', auth: 'any', handler: async () => { throw notFound('Memory not found'); } },
    { method: 'GET', path: '/memory/export', summary: 'export', auth: 'any', handler: async () => ({ status: 200, body: { memories: [] } }) },
    { method: 'GET', path: '/auth/me', summary: 'me', auth: 'any', handler: async () => { throw unauthorized('Authentication required', 'UNAUTHORIZED'); } },
    { method: 'GET', path: '/org/projects', summary: 'list', auth: 'any', handler: async () => { throw forbidden('Insufficient scope. Missing: projects:read', 'INSUFFICIENT_SCOPE'); } },
    {
      method: 'POST', path: '/org/projects', summary: 'create', auth: 'any', audit: { event: 'project.created', resource: 'project', category: 'org' },
      // As IdentityService.createProject does: the row is written inside the business transaction and claimed.
      handler: async (ctx) => {
        await db.kysely.transaction().execute(async (trx) => {
          await writeAudit(trx, { tenantId: principal.tenantId, eventType: 'project.created', category: 'org', resourceType: 'project', resourceId: 'proj_1', action: 'create', status: 'success', statusCode: 201, requestId: ctx.requestId });
          ctx.audit.written = true;
        });
        return { status: 201, body: { id: 'proj_1' } };
      },
    },
  ];
  const router = new Router(routes);

  const rowsFor = (id: string) => db.kysely.selectFrom('audit_logs').selectAll().where('request_id', '=', id).execute();
  const send = async (handler: ReturnType<typeof handlerWith>, method: string, path: string, body?: unknown) => {
    const id = `audit-${randomUUID()}`;
    const res = await handler(apiEvent({ method, path, headers: { 'X-Request-ID': id, 'User-Agent': 'n8n-nodes-memorysync/2.1' }, body, sourceIp: '192.0.2.44' }));
    return { res, rows: await rowsFor(id) };
  };

  beforeAll(async () => {
    db = await openPgliteDb();
    await migrateToLatest(db.kysely);
    const chain = (p?: Principal) =>
      handlerWith([requestId(), given({ router, principal: p }), audit({ db: db.kysely, logger: silentLogger() }), errorHandler({ logger: silentLogger() })], createDispatcher(router, 1_048_576));
    withKey = chain(principal);
    anonymous = chain();
  });
  afterAll(() => db?.close());

  it('writes one success row for a mutating request, with the route audit event, principal and resource', async () => {
    const { res, rows } = await send(withKey, 'POST', '/memory/add', { text: SECRET_TEXT });
    expect(res.statusCode).toBe(201);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      tenant_id: principal.tenantId, principal: 'api_key:77', event_type: 'memory.created', category: 'data', resource_type: 'memory',
      resource_id: '42', action: 'post', status: 'success', status_code: 201, ip_address: '192.0.2.44', user_agent: 'n8n-nodes-memorysync/2.1',
    });
  });

  it('writes one failure row for a mutating request that fails validation, is not found or crashes', async () => {
    for (const [method, path, status] of [['POST', '/memory/bulk-add', 422], ['DELETE', '/memory/9', 404], ['POST', '/memory/query', 500]] as const) {
      const { res, rows } = await send(withKey, method, path, { items: [] });
      expect(res.statusCode).toBe(status);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'failure', status_code: status, event_type: 'api.request_failed', action: method.toLowerCase() });
    }
  });

  it('writes a security row for a 401 and a 403 on GET', async () => {
    const unauth = await send(anonymous, 'GET', '/auth/me');
    expect(unauth.res.statusCode).toBe(401);
    expect(unauth.rows).toHaveLength(1);
    expect(unauth.rows[0]).toMatchObject({ tenant_id: null, event_type: 'auth.unauthorized', category: 'security', status: 'failure', status_code: 401, ip_address: '192.0.2.44' });

    const denied = await send(withKey, 'GET', '/org/projects');
    expect(denied.res.statusCode).toBe(403);
    expect(denied.rows).toHaveLength(1);
    expect(denied.rows[0]).toMatchObject({ tenant_id: principal.tenantId, event_type: 'auth.forbidden', category: 'security', status_code: 403 });
  });

  it('writes nothing for a successful GET', async () => {
    const { res, rows } = await send(withKey, 'GET', '/memory/export');
    expect(res.statusCode).toBe(200);
    expect(rows).toHaveLength(0);
  });

  it('adds no second row when the service already wrote one and marked it written', async () => {
    const { res, rows } = await send(withKey, 'POST', '/org/projects', { name: 'Research' });
    expect(res.statusCode).toBe(201);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event_type: 'project.created', resource_id: 'proj_1' });
  });

  it('never stores the request body in the row', async () => {
    const ok = await send(withKey, 'POST', '/memory/add', { text: SECRET_TEXT, metadata: { note: SECRET_TEXT } });
    const failed = await send(withKey, 'POST', '/memory/bulk-add', { items: [{ text: SECRET_TEXT }] });
    for (const rows of [ok.rows, failed.rows]) {
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows[0])).not.toContain('7291');
    }
  });
});
