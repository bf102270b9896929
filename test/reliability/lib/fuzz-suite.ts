import fc from 'fast-check';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteDefinition } from '../../../shared/http/types.ts';
import { startTestServer, tableCounts, type TestServer } from '../../support/server.ts';
import { hasErrorEnvelope, newActor, type Actor } from './actors.ts';
import { pool, rawRequest, type RawRequest } from './http.ts';
import { recordFinding, recordTable, type Profile } from './report.ts';
import { tenantFootprint } from './stores.ts';
import { arbitraryFor, HOSTILE_STRINGS, mutateInvalid } from './zod-arbitrary.ts';
import { apiEvent, lambdaContext } from '../../support/events.ts';

const SIZES: Record<Profile, { mustReject: number; anyOutcome: number; huge: number }> = {
  full: { mustReject: 6_000, anyOutcome: 4_500, huge: 20 },
  fast: { mustReject: 600, anyOutcome: 420, huge: 3 },
};

interface Case extends RawRequest {
  kind: string;
  mustReject: boolean;
}

const MALFORMED = ['{', '{"text":', 'nul', '[1,2', "{'text': 'single quotes'}", '{"a":1,}', '\u0000', '{"text":"unterminated', '}{', '{"text": NaN}', '\uFEFF{"text":"bom"}', '{"__proto__":{"admin":true}}x', '1 2'];
const PATH_TRICKS = [
  '/memory/..', '/memory/../org/projects', '/memory/%2e%2e/admin/tenants', '/memory/%2E%2E%2Fadmin', '//memory//add', '/memory/add/..;/', '/MEMORY/ADD', '/memory/%', '/memory/%00',
  '/memory/1%2f2', '/v1/memory/..%2f..%2fadmin/x/list', '/memory/add%00.json', '/./memory/./add', '/memory/add?x=1&x=2', '/%2e%2e/%2e%2e/etc/passwd', '/memory/\u00e9',
  `/memory/${'a'.repeat(10_000)}`, `/${'x/'.repeat(2_000)}`, '/memory/-1', '/memory/99999999999999999999999', '/memory/1e3', '/memory/0x10', '/org/projects/%20', '/health/..', '/admin/tenants/%2e%2e',
];

const sample = <T>(arb: fc.Arbitrary<T>, seed: number): T => fc.sample(arb, { numRuns: 1, seed })[0];
const bodyRoute = (r: RouteDefinition) => r.body !== undefined && (r.bodyFormat ?? 'json') === 'json';
/** percent-encoding that also carries lone surrogates (as their invalid UTF-8 bytes) onto the wire */
const encodeSegment = (v: string): string =>
  v.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\s\S]/g, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      const u = c.charCodeAt(0);
      return [0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    }
  });
const fill = (path: string, params: Record<string, string>) => path.replace(/\{(\w+)\}/g, (_, n: string) => encodeSegment(String(params[n] ?? '1')));
const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null));
const safeParses = (schema: z.ZodType | undefined, v: unknown) => !schema || schema.safeParse(v).success;

/**
 * Fuzzing from the route table: bodies, params and queries generated from the same zod schemas the
 * dispatcher validates with, plus hostile mutations. "must reject" cases are invalid by construction
 * (checked with safeParse); "any outcome" cases are valid-ish. Every answer: < 500 (or a documented
 * 503 in the envelope), 4xx in the envelope; the database unchanged by the rejected ones.
 */
export function fuzzSuite(profile: Profile) {
  const size = SIZES[profile];
  describe(`fuzzing (${profile}: ≥ ${size.mustReject + size.anyOutcome} requests generated from the route table's zod schemas)`, { timeout: profile === 'full' ? 900_000 : 240_000 }, () => {
    let server: TestServer;
    let actor: Actor;
    let other: Actor;
    const email = `fuzz-admin-${Date.now()}@example.com`;

    beforeAll(async () => {
      server = await startTestServer({ PLATFORM_ADMIN_EMAILS: email });
      actor = await newActor(server, 'fuzz', email);
      other = await newActor(server, 'fuzz-other');
      await server.call('POST', '/memory/add', { headers: { 'X-API-Key': actor.apiKey, 'X-End-User-ID': 'fuzz-user' }, body: { text: 'a memory that must survive the fuzzing run' } });
    });
    afterAll(async () => server?.stop());

    const credentials = (r: RouteDefinition, seed: number): Record<string, string | string[]> => {
      if (r.auth === 'public') return {};
      // The fuzzing end user is not the canary's owner: a generated purge or forget may legitimately empty its own data.
      if (r.auth === 'any' && seed % 3 !== 0) return { 'x-api-key': actor.apiKey, 'x-end-user-id': 'fuzz-actor' };
      return { authorization: `Bearer ${actor.token}`, 'x-end-user-id': 'fuzz-actor' };
    };

    function mustRejectCase(routes: RouteDefinition[], seed: number): Case | null {
      const r = routes[seed % routes.length];
      const kind = seed % 7;
      const headers = { ...credentials(r, seed), 'content-type': 'application/json' };
      const validParams = () => (r.params ? (sample(arbitraryFor(r.params), seed) as Record<string, string>) : {});
      if (kind <= 2 && bodyRoute(r)) {
        const base = sample(arbitraryFor(r.body!), seed);
        const bad = roundTrip(sample(mutateInvalid(base), seed + 1));
        // a JSON null body is read as "no body" by the dispatcher; for all-optional bodies that is valid input
        if (safeParses(r.body, bad) || (bad === null && safeParses(r.body, {}))) return null;
        return { kind: 'invalid body (wrong type / missing field / out of range)', mustReject: true, method: r.method, path: fill(r.path, validParams()), headers, body: JSON.stringify(bad) };
      }
      if (kind === 3 && bodyRoute(r)) return { kind: 'malformed JSON', mustReject: true, method: r.method, path: fill(r.path, validParams()), headers, body: MALFORMED[seed % MALFORMED.length] };
      if (kind === 4 && bodyRoute(r)) {
        const depth = 2_000 + (seed % 50_000);
        const body = seed % 2 ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"text":'.repeat(depth)}1${'}'.repeat(depth)}`;
        return { kind: 'deep nesting', mustReject: true, method: r.method, path: fill(r.path, validParams()), headers, body };
      }
      if (kind === 5 && r.params) {
        const names = Object.keys((r.params as unknown as { shape: Record<string, unknown> }).shape ?? {});
        const value = HOSTILE_STRINGS[seed % HOSTILE_STRINGS.length].slice(0, 500);
        const params = { ...validParams(), [names[seed % Math.max(1, names.length)]]: value };
        if (!value || safeParses(r.params, params)) return null;
        return { kind: 'invalid path parameter', mustReject: true, method: r.method, path: fill(r.path, params), headers: credentials(r, seed), body: bodyRoute(r) ? JSON.stringify(sample(arbitraryFor(r.body!), seed)) : undefined };
      }
      if (kind === 6 && r.query) {
        const q = sample(arbitraryFor(r.query), seed) as Record<string, unknown>;
        const keys = Object.keys(q);
        if (!keys.length) return null;
        const bad = { ...q, [keys[seed % keys.length]]: ['-1', 'abc', '1e999', 'null', '', '\u0000'][seed % 6] };
        const qs = new URLSearchParams(Object.entries(bad).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
        const parsed = Object.fromEntries(qs.entries());
        if (safeParses(r.query, parsed)) return null;
        return { kind: 'invalid query', mustReject: true, method: r.method, path: `${fill(r.path, validParams())}?${qs}`, headers: credentials(r, seed) };
      }
      return null;
    }

    function anyOutcomeCase(routes: RouteDefinition[], seed: number): Case {
      const r = routes[seed % routes.length];
      const kind = seed % 5;
      // numeric ids far from the suite's own (key, memory) ids, so a valid-ish DELETE cannot remove the suite's credentials
      const params = r.params ? Object.fromEntries(Object.entries(sample(arbitraryFor(r.params), seed) as Record<string, string>).map(([k, v]) => [k, /^\d+$/.test(String(v)) ? String(Number(v) + 1_000_000) : String(v)])) : {};
      const query = r.query ? sample(arbitraryFor(r.query), seed + 7) as Record<string, unknown> : {};
      const qs = new URLSearchParams(Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null).map(([k, v]): [string, string] => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])).toString();
      const path = `${fill(r.path, params)}${qs ? `?${qs}` : ''}`;
      const body = bodyRoute(r) ? JSON.stringify(sample(arbitraryFor(r.body!), seed)) : undefined;
      const headers: Record<string, string | string[]> = { ...credentials(r, seed), ...(body ? { 'content-type': 'application/json' } : {}) };
      if (kind === 1) {
        headers['x-api-key'] = [actor.apiKey, other.apiKey];
        return { kind: 'duplicated headers (two tenants\' keys)', mustReject: false, method: r.method, path, headers, body };
      }
      if (kind === 2) {
        headers['x-end-user-id'] = ['fuzz-actor', 'someone-else'];
        headers['content-type'] = ['application/json', 'text/plain'];
        return { kind: 'duplicated headers (end user, content type)', mustReject: false, method: r.method, path, headers, body };
      }
      if (kind === 3) return { kind: 'path trick', mustReject: false, method: ['GET', 'POST', 'DELETE'][seed % 3], path: PATH_TRICKS[seed % PATH_TRICKS.length], headers: credentials(r, seed) };
      return { kind: 'valid-ish from schema', mustReject: false, method: r.method, path, headers, body };
    }

    // Regression (fuzz finding: POST /api/v2/memory/add → 500 with two tenants' X-API-Key headers). The 500 came from
    // the generated body — a lone UTF-16 surrogate in a plaintext column is not valid UTF-8 for PostgreSQL — and the
    // duplicated key was acted on by its first value. Both are refused now, on every route.
    it('refuses duplicated or conflicting credential and tenancy headers with a 400 envelope on every kind of route, and writes nothing', async () => {
      const routes: Array<[string, string, unknown?]> = [
        ['POST', '/memory/add', { text: 'written by an ambiguous caller' }],
        ['POST', '/api/v2/memory/add', { text: 'written by an ambiguous caller' }],
        ['POST', '/memory/query', { query: 'ambiguous' }],
        ['GET', '/api/v2/memory/list'],
        ['GET', '/org/projects'],
        ['GET', '/auth/me'],
        ['POST', '/org/webhooks', { url: 'https://example.com/hook', events: ['memory.created'] }],
      ];
      const key = { 'x-api-key': actor.apiKey, 'x-end-user-id': 'dup-user' };
      const variants: Array<[string, Record<string, string | string[]>]> = [
        ["two tenants' X-API-Key", { ...key, 'x-api-key': [actor.apiKey, other.apiKey] }],
        ["two tenants' X-API-Key, other first", { ...key, 'x-api-key': [other.apiKey, actor.apiKey] }],
        ['X-API-Key and a different Bearer key', { ...key, authorization: `Bearer ${other.apiKey}` }],
        ["two tenants' sessions", { authorization: [`Bearer ${actor.token}`, `Bearer ${other.token}`], 'x-end-user-id': 'dup-user' }],
        ['two end users', { ...key, 'x-end-user-id': ['dup-user', 'someone-else'] }],
        ["two tenants' X-Project-ID", { ...key, 'x-project-id': [actor.projectId, other.projectId] }],
        ['two X-Tenant-ID', { ...key, 'x-tenant-id': [actor.tenantId, other.tenantId] }],
      ];
      const before = [await tenantFootprint(server.app.db.kysely, actor.tenantId), await tenantFootprint(server.app.db.kysely, other.tenantId)];
      const wrong: string[] = [];
      for (const [method, path, body] of routes) {
        for (const [label, headers] of variants) {
          const res = await rawRequest(server.url, { method, path, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
          const code = (res.json as { error?: { code?: string } } | null)?.error?.code;
          if (res.status !== 400 || code !== 'AMBIGUOUS_CREDENTIALS' || !hasErrorEnvelope(path, res.json)) wrong.push(`${method} ${path}, ${label}: ${res.status} ${res.text.slice(0, 120)}`);
        }
      }
      // API Gateway's own shape: the last value in headers, every value in multiValueHeaders
      const gateway = apiEvent({ method: 'POST', path: '/api/v2/memory/add', headers: { 'X-API-Key': other.apiKey, 'X-End-User-ID': 'dup-user' }, body: { text: 'via the gateway' } });
      gateway.multiValueHeaders['X-API-Key'] = [actor.apiKey, other.apiKey];
      const viaGateway = await server.app.api(gateway, lambdaContext());
      const after = [await tenantFootprint(server.app.db.kysely, actor.tenantId), await tenantFootprint(server.app.db.kysely, other.tenantId)];
      for (const f of [...before, ...after]) delete f.audit_logs;

      expect(wrong).toEqual([]);
      expect(viaGateway.statusCode).toBe(400);
      expect(JSON.parse(viaGateway.body).error.code).toBe('AMBIGUOUS_CREDENTIALS');
      expect(after).toEqual(before);
      // the same key twice is one caller, not two; a lone surrogate in a plaintext field is a 422, not a 500
      const same = await rawRequest(server.url, { method: 'POST', path: '/api/v2/memory/add', headers: { ...key, 'x-api-key': [actor.apiKey, actor.apiKey], 'content-type': 'application/json' }, body: JSON.stringify({ text: 'the same key twice' }) });
      expect(same.status).toBe(201);
      for (const field of ['source', 'event_type', 'tags']) {
        const value = field === 'tags' ? ['ok', 'lone \udd23 surrogate'] : 'lone \udd23 surrogate';
        // JSON.stringify writes a lone surrogate as the escape \udd23, as the fuzzer's bodies carried it
        const bad = await rawRequest(server.url, { method: 'POST', path: '/api/v2/memory/add', headers: { ...key, 'content-type': 'application/json' }, body: JSON.stringify({ text: `surrogate in ${field}`, [field]: value }) });
        expect(bad.status, `${field}: ${bad.text}`).toBe(422);
        expect(hasErrorEnvelope('/api/v2/memory/add', bad.json)).toBe(true);
      }
    });

    it('answers every generated request below 500 (or a documented 503) with the envelope on 4xx, and rejected requests change nothing', async () => {
      const routes = server.app.router.routes.filter((r) => r.path !== '/auth/logout' && r.path !== '/mcp');
      const mustReject: Case[] = [];
      for (let seed = 1; mustReject.length < size.mustReject; seed++) {
        const c = mustRejectCase(routes, seed);
        if (c) mustReject.push(c);
      }
      for (let i = 0; i < size.huge; i++) {
        const r = routes.filter(bodyRoute)[i % routes.filter(bodyRoute).length];
        mustReject.push({ kind: 'huge body (> MAX_BODY_BYTES)', mustReject: true, method: r.method, path: fill(r.path, {}), headers: { ...credentials(r, i), 'content-type': 'application/json' }, body: JSON.stringify({ text: 'x'.repeat(1_200_000) }) });
      }
      const anyOutcome = Array.from({ length: size.anyOutcome }, (_, i) => anyOutcomeCase(routes, 100_000 + i));

      const failures: string[] = [];
      const byKind = new Map<string, { n: number; statuses: Map<number, number> }>();
      const run = async (c: Case) => {
        let res;
        try {
          res = await rawRequest(server.url, c);
        } catch (err) {
          failures.push(`${c.kind}: ${c.method} ${c.path.slice(0, 80)} → no answer (${(err as Error).message.slice(0, 80)})`);
          return;
        }
        const k = byKind.get(c.kind) ?? { n: 0, statuses: new Map() };
        k.n++;
        k.statuses.set(res.status, (k.statuses.get(res.status) ?? 0) + 1);
        byKind.set(c.kind, k);
        const where = `${c.kind}: ${c.method} ${c.path.slice(0, 80)}`;
        if (res.status >= 500 && !(res.status === 503 && hasErrorEnvelope(c.path, res.json))) failures.push(`${where} → ${res.status} ${res.text.slice(0, 160)}`);
        if (res.status >= 400 && res.status < 500 && !hasErrorEnvelope(c.path.split('?')[0], res.json)) failures.push(`${where} → ${res.status} without the envelope: ${res.text.slice(0, 120)}`);
        if (c.mustReject && res.status < 400) failures.push(`${where} → ${res.status}: an invalid request was accepted`);
      };

      const before = { global: await tableCounts(server), tenant: await tenantFootprint(server.app.db.kysely, actor.tenantId) };
      await pool(mustReject, 6, run);
      const after = { global: await tableCounts(server), tenant: await tenantFootprint(server.app.db.kysely, actor.tenantId) };
      delete before.tenant.audit_logs;
      delete after.tenant.audit_logs;
      await pool(anyOutcome, 6, run);

      const total = mustReject.length + anyOutcome.length;
      recordTable({
        section: 'fuzzing',
        title: `${total} requests over ${routes.length} routes (${profile})`,
        columns: ['input kind', 'requests', 'statuses'],
        rows: [...byKind.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, v]) => [kind, v.n, [...v.statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')]),
        notes: [
          `${failures.length} failures (answers ≥ 500 other than an enveloped 503, 4xx without the envelope, accepted invalid input, no answer).`,
          `Database unchanged by the ${mustReject.length} rejected requests: ${JSON.stringify(before) === JSON.stringify(after) ? 'yes' : 'NO'} (row counts of every table of the fuzzed tenant except audit_logs, which records every rejected mutation by design, plus the global tables).`,
        ],
      });
      for (const f of failures.slice(0, 5)) recordFinding('fuzzing', f);
      expect(failures.slice(0, 25), `${failures.length} failures`).toEqual([]);
      expect(after).toEqual(before);
      expect(total).toBeGreaterThanOrEqual(profile === 'full' ? 10_000 : 1_000);
      // the fuzzed tenant still works and its memory is intact
      const check = await server.call('GET', '/memory/export', { headers: { 'X-API-Key': actor.apiKey, 'X-End-User-ID': 'fuzz-user' } });
      expect(check.body.memories.map((m: { text: string }) => m.text)).toContain('a memory that must survive the fuzzing run');
    });
  });
}
