import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RouteDefinition } from '../../../shared/http/types.ts';
import { startTestServer, type TestServer } from '../../support/server.ts';
import { newActor, type Actor } from './actors.ts';
import { rawRequest } from './http.ts';
import { recordTable, type Profile } from './report.ts';
import { arbitraryFor } from './zod-arbitrary.ts';

/** The victim's resources an attacker names in paths, headers and bodies. */
interface VictimIds {
  tenantId: string;
  projectId: string;
  memoryId: string;
  endUser: string;
  apiKeyId: string;
  accountPublicId: string;
  webhookId: string;
  deliveryId: string;
  invitationId: string;
  oauthAppId: string;
  ssoProviderId: string;
  scimTokenId: string;
  scimUserId: string;
  forwarderId: string;
}

/**
 * Path parameters the matrix knows how to fill with the victim's ids: [route path pattern, param name,
 * victim id]. A route with a parameter not listed here fails the matrix: a new route needs a row.
 */
const PARAM_GENERATORS: Array<[RegExp, string, (v: VictimIds) => string]> = [
  [/^\/(api\/v2\/)?memory\/\{id\}/, 'id', (v) => v.memoryId],
  [/^\/api\/v1\/memories\/\{id\}/, 'id', (v) => v.memoryId],
  [/^\/v1\/memory\/\{tenant_id\}\/\{user_id\}/, 'tenant_id', (v) => v.tenantId],
  [/^\/v1\/memory\/\{tenant_id\}\/\{user_id\}/, 'user_id', (v) => v.endUser],
  [/\/\{project_id\}/, 'project_id', (v) => v.projectId],
  [/^\/org\/api-keys\/\{id\}/, 'id', (v) => v.apiKeyId],
  [/^\/org\/members\/\{user_id\}/, 'user_id', (v) => v.accountPublicId],
  [/^\/org\/webhooks\/deliveries\/\{id\}/, 'id', (v) => v.deliveryId],
  [/^\/org\/webhooks\/\{id\}/, 'id', (v) => v.webhookId],
  [/^\/org\/invitations\/\{id\}/, 'id', (v) => v.invitationId],
  [/^\/org\/oauth\/apps\/\{app_id\}/, 'app_id', (v) => v.oauthAppId],
  [/\/\{provider_id\}/, 'provider_id', (v) => v.ssoProviderId],
  [/^\/org\/scim\/tokens\/\{id\}/, 'id', (v) => v.scimTokenId],
  [/^\/scim\/v2\/(Users|Groups)\/\{id\}/, 'id', (v) => v.scimUserId],
  [/^\/org\/siem\/forwarders\/\{id\}/, 'id', (v) => v.forwarderId],
  [/^\/admin\/tenants\/\{id\}/, 'id', (v) => v.tenantId],
  [/^\/admin\/dead-letters\/\{family\}/, 'family', () => 'webhook-delivery'],
  [/^\/docs\/assets\/\{file\}/, 'file', () => 'app.js'],
  // the victim has no integration or crawl job in the matrix: ids of the right shape that are not the attacker's
  [/^\/api\/v1\/integrations\/\{provider\}/, 'provider', () => 'github'],
  [/^\/api\/v1\/integrations\/\{id\}/, 'id', () => 'int_000000000000000000000000'],
  [/^\/api\/v1\/crawler\/jobs\/\{id\}/, 'id', () => 'crj_000000000000000000000000'],
];

const paramNames = (path: string) => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);

export function classifyParams(route: RouteDefinition): { fill: (v: VictimIds) => string } | { unknown: string[] } {
  const names = paramNames(route.path);
  const unknown = names.filter((n) => !PARAM_GENERATORS.some(([re, name]) => name === n && re.test(route.path)));
  if (unknown.length) return { unknown };
  return {
    fill: (v) => route.path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(PARAM_GENERATORS.find(([re, name]) => name === n && re.test(route.path))![2](v))),
  };
}

interface Attack {
  name: string;
  headers: Record<string, string>;
  body?: unknown;
  /** ids the path names instead of the victim's (the v1 plane names its end user in the path) */
  ids?: Partial<VictimIds>;
}

/**
 * Tenancy matrix generated from the route table: every route × every cross access that applies to
 * it by its declared properties (auth, endUser, params, body). Each must be refused (≥ 400) or empty
 * (no victim marker in the answer), and the victim's data reads back unchanged afterwards.
 */
export function tenancySuite(profile: Profile) {
  describe(`tenancy matrix from the route table (${profile})`, { timeout: profile === 'full' ? 600_000 : 240_000 }, () => {
    let server: TestServer;
    let victim: Actor;
    let attacker: Actor;
    let ids: VictimIds;
    const secret = `VICTIM-SECRET-${randomBytes(6).toString('hex')}`;
    const markers: string[] = [secret];
    let attackerScimToken = '';

    beforeAll(async () => {
      // webhook and SIEM targets must resolve to a public address; answer DNS with one (nothing is sent)
      server = await startTestServer({}, { resolveHost: async () => [{ address: '93.184.216.34', family: 4 }] } as never);
      victim = await newActor(server, 'victim');
      attacker = await newActor(server, 'attacker');
      const vh = { Authorization: `Bearer ${victim.token}` };
      const mem = await server.call('POST', '/memory/add', { headers: { 'X-API-Key': victim.apiKey, 'X-End-User-ID': 'victim-user' }, body: { text: `${secret} the victim's private note`, tags: ['private'] } });
      const tryId = async (method: string, path: string, body: unknown, pick: (b: any) => unknown, fallback: string) => {
        const r = await server.call(method, path, { headers: vh, body }).catch(() => null);
        const v = r && r.status < 300 ? pick(r.body) : undefined;
        return v === undefined || v === null ? fallback : String(v);
      };
      const webhookUrl = `https://hooks.example.com/${secret}`;
      markers.push(webhookUrl);
      const webhookId = await tryId('POST', '/org/webhooks', { name: 'victim hook', url: webhookUrl, events: ['memory.created'] }, (b) => b.id, 'wh_00000000000000000000000000000000');
      const scimTokenRes = await server.call('POST', '/org/scim/tokens', { headers: vh, body: { name: 'victim scim' } });
      const scimUser = scimTokenRes.status === 201
        ? await server.call('POST', '/scim/v2/Users', { headers: { Authorization: `Bearer ${scimTokenRes.body.token}`, 'content-type': 'application/scim+json' }, body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: `${secret.toLowerCase()}@example.com` } })
        : null;
      const attackerScim = await server.call('POST', '/org/scim/tokens', { headers: { Authorization: `Bearer ${attacker.token}` }, body: { name: 'attacker scim' } });
      attackerScimToken = attackerScim.body?.token ?? '';
      ids = {
        tenantId: victim.tenantId, projectId: victim.projectId, memoryId: String(mem.body.id), endUser: 'victim-user', apiKeyId: String(victim.apiKeyId),
        accountPublicId: victim.accountPublicId, webhookId, deliveryId: '999999',
        invitationId: await tryId('POST', '/org/invitations', { email: `invitee-${secret.toLowerCase()}@example.com`, role: 'member' }, (b) => b.id, '999999'),
        oauthAppId: await tryId('POST', '/org/oauth/apps', { name: `app ${secret}`, redirect_uris: ['https://app.example.com/cb'] }, (b) => b.id ?? b.app_id, 'oap_0000000000000000'),
        ssoProviderId: 'sso_0000000000000000',
        scimTokenId: String(scimTokenRes.body?.id ?? '999999'),
        scimUserId: String(scimUser?.body?.id ?? '00000000-0000-0000-0000-000000000000'),
        forwarderId: await tryId('POST', '/org/siem/forwarders', { type: 'generic', url: `https://siem.example.com/${secret}`, token: 'victim-siem-token' }, (b) => b.id, '00000000-0000-0000-0000-000000000000'),
      };
      markers.push(`https://siem.example.com/${secret}`, victim.email);
    });
    afterAll(async () => server?.stop());

    const attacksFor = (r: RouteDefinition): Attack[] => {
      const out: Attack[] = [];
      const key = { 'x-api-key': attacker.apiKey };
      const session = { authorization: `Bearer ${attacker.token}` };
      const eu: Record<string, string> = r.endUser ? { 'x-end-user-id': ids.endUser } : {};
      if (r.auth === 'any') {
        out.push({ name: "other tenant's API key (same end-user id)", headers: { ...key, ...eu } });
        out.push({ name: "other tenant's X-Project-ID", headers: { ...key, ...eu, 'x-project-id': ids.projectId } });
      }
      if (r.auth === 'any' || r.auth === 'session') out.push({ name: "other tenant's session", headers: { ...session, ...eu } });
      if (r.auth === 'platform-admin') out.push({ name: 'tenant owner on an operator route', headers: session });
      if (r.auth === 'scim') out.push({ name: "other tenant's SCIM token", headers: { authorization: `Bearer ${attackerScimToken}` } });
      // On /v1 the end user is named by user_id (path or body), not by X-End-User-ID: name the other one there.
      if (r.endUser) out.push({ name: 'other end user of the same tenant', headers: { 'x-api-key': victim.apiKey, 'x-end-user-id': 'someone-else' }, ids: { endUser: 'someone-else' }, ...(r.endUser === 'v1' && r.body ? { body: { ...(fc.sample(arbitraryFor(r.body), { numRuns: 1, seed: 42 })[0] as object), tenant_id: 'default', user_id: 'someone-else', memory_ids: [Number(ids.memoryId)] } } : {}) });
      if (r.body && (r.bodyFormat ?? 'json') === 'json' && r.auth !== 'public') {
        const base = fc.sample(arbitraryFor(r.body), { numRuns: 1, seed: 42 })[0];
        const overrides = { tenant_id: ids.tenantId, user_id: ids.endUser, end_user_id: ids.endUser, project_id: ids.projectId, memory_ids: [Number(ids.memoryId)] };
        const body = base && typeof base === 'object' && !Array.isArray(base) ? { ...base, ...overrides } : overrides;
        out.push({ name: 'body overrides of tenant/user/project ids', headers: r.auth === 'any' ? { ...key, ...eu } : session, body });
      }
      return out;
    };

    it('refuses or answers empty every cross access of every registered route, and the victim reads back unchanged', async () => {
      const routes = server.app.router.routes;
      const unclassified = routes.map((r) => ({ r, c: classifyParams(r) })).filter((x) => 'unknown' in x.c);
      expect(unclassified.map((x) => `${x.r.method} ${x.r.path}: no id generator for {${(x.c as { unknown: string[] }).unknown.join('}, {')}} — add a row to PARAM_GENERATORS in test/reliability/lib/tenancy-suite.ts`)).toEqual([]);

      const readBack = async () => ({
        export: (await server.call('GET', '/memory/export', { headers: { 'X-API-Key': victim.apiKey, 'X-End-User-ID': ids.endUser } })).body.memories.map((m: any) => ({ id: m.id, text: m.text, tags: m.tags, importance: m.importance })),
        projects: (await server.call('GET', '/org/projects', { headers: { Authorization: `Bearer ${victim.token}` } })).body.map((p: any) => ({ id: p.id, name: p.name })),
        keys: (await server.call('GET', '/org/api-keys', { headers: { Authorization: `Bearer ${victim.token}` } })).body,
        webhooks: (await server.call('GET', '/org/webhooks', { headers: { Authorization: `Bearer ${victim.token}` } })).body,
        members: (await server.call('GET', '/org/members', { headers: { Authorization: `Bearer ${victim.token}` } })).body,
        tenant: await server.app.db.kysely.selectFrom('tenants').select(['id', 'status', 'plan']).where('id', '=', victim.tenantId).execute(),
      });
      const before = await readBack();

      const leaks: string[] = [];
      const rows: Array<Array<string | number>> = [];
      let total = 0;
      for (const r of routes) {
        const c = classifyParams(r);
        if (!('fill' in c)) continue;
        const attacks = attacksFor(r);
        if (attacks.length === 0) {
          rows.push([`${r.method} ${r.path}`, r.auth, 'public route: no tenant credential to cross', '—']);
          continue;
        }
        const outcomes: string[] = [];
        for (const a of attacks) {
          total++;
          const body = a.body !== undefined ? JSON.stringify(a.body) : r.method === 'DELETE' && r.body ? JSON.stringify({ memory_ids: [Number(ids.memoryId)] }) : undefined;
          const path = c.fill({ ...ids, ...a.ids });
          const res = await rawRequest(server.url, { method: r.method, path, headers: { ...a.headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
          const leaked = res.status < 400 && markers.some((m) => res.text.includes(m));
          if (leaked || res.status >= 500) leaks.push(`${r.method} ${r.path} — ${a.name} → ${res.status}${leaked ? ' with victim data' : ''}: ${res.text.slice(0, 160)}`);
          outcomes.push(`${a.name}: ${res.status < 400 ? `${res.status} (empty)` : res.status}`);
        }
        rows.push([`${r.method} ${r.path}`, r.auth + (r.endUser ? ', end user' : ''), outcomes.join('; '), leaks.filter((l) => l.startsWith(`${r.method} ${r.path} `)).length]);
      }
      // the victim logs in again in case an attack ended its session (it must not have)
      const after = await readBack();

      recordTable({
        section: 'tenancy',
        title: `${routes.length} routes, ${total} cross-access attempts (${profile})`,
        columns: ['route', 'auth', 'attack → status', 'leaks'],
        rows,
        notes: [`${leaks.length} leaks; victim's memories, projects, keys, webhooks, members and tenant row read back ${JSON.stringify(before) === JSON.stringify(after) ? 'unchanged' : 'CHANGED'}.`],
      });
      expect(leaks).toEqual([]);
      expect(after).toEqual(before);
      expect(before.export.map((m: any) => m.text)).toContain(`${secret} the victim's private note`);
    });

    it('fails, naming the route, when a route has a path parameter the matrix cannot fill', () => {
      const fake = { method: 'GET', path: '/org/widgets/{widget_id}', summary: 'x', auth: 'any', handler: async () => ({ status: 200 }) } as RouteDefinition;
      expect(classifyParams(fake)).toEqual({ unknown: ['widget_id'] });
    });
  });
}
