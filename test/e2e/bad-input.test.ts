import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, tableCounts, type TestServer } from '../support/server.ts';

/** A small body cap keeps the oversized-body cases fast; the server's 10 MiB hard cap is tested too. */
const MAX_BODY_BYTES = 65_536;

interface Attempt {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string | Uint8Array;
}

describe('bad input over HTTP', () => {
  let server: TestServer;
  let key: string;
  let memoryId: number;
  const endUser = 'bad-input-user';
  const h = (extra: Record<string, string> = {}) => keyHeaders(key, endUser, extra);

  beforeAll(async () => {
    server = await startTestServer({ MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
    ({ apiKey: key } = await server.newTenant('Bad input tenant'));
    const add = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'A valid memory that bad requests must not disturb.' } });
    expect(add.status).toBe(201);
    memoryId = add.body.id;
  });
  afterAll(() => server.stop());

  /** Sends a request that must be rejected; returns the parsed answer after checking the envelope and the database. */
  async function rejected(attempt: Attempt, status: number, code: string) {
    const before = await tableCounts(server);
    const res = await send(attempt);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body).toMatchObject({ error: { code, message: expect.any(String) }, request_id: expect.any(String) });
    expect(res.body).toHaveProperty('detail');
    expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await tableCounts(server)).toEqual(before);
    return res;
  }

  async function send(attempt: Attempt) {
    const raw = attempt.rawBody ?? (attempt.body !== undefined ? JSON.stringify(attempt.body) : undefined);
    const res = await fetch(`${server.url}${attempt.path}`, {
      method: attempt.method,
      headers: { ...(raw !== undefined ? { 'content-type': 'application/json' } : {}), ...(attempt.headers ?? {}) },
      body: raw,
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // asserted as an envelope by the caller; a non-JSON answer fails there
    }
    return { status: res.status, body, headers: res.headers };
  }

  const detailLocs = (body: any): string[] => (body.error.details ?? []).map((d: any) => d.loc.join('.'));

  describe('malformed JSON', () => {
    it.each([
      ['POST', '/memory/add'],
      ['POST', '/memory/query'],
      ['POST', '/memory/bulk-add'],
      ['DELETE', '/memory/forget'],
      ['PATCH', '/memory/{id}'],
      ['POST', '/v1/memory/add_turn'],
      ['POST', '/auth/signup'],
    ])('answers 400 INVALID_JSON on %s %s', async (method, path) => {
      await rejected({ method, path: path.replace('{id}', String(memoryId)), headers: h(), rawBody: '{"text": "unterminated' }, 400, 'INVALID_JSON');
    });

    it('answers 400 INVALID_JSON for a body that is not UTF-8 text', async () => {
      await rejected({ method: 'POST', path: '/memory/add', headers: h(), rawBody: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }, 400, 'INVALID_JSON');
    });

    it('answers 400 INVALID_JSON even when the end user would come from the body', async () => {
      await rejected({ method: 'POST', path: '/memory/add', headers: { 'X-API-Key': key }, rawBody: '{"end_user_id": "x", ' }, 400, 'INVALID_JSON');
    });
  });

  describe('wrong types', () => {
    it.each([
      ['/memory/add', { text: 12345678901 }, 'text'],
      ['/memory/add', { text: 'Tags must be an array of strings.', tags: 'work' }, 'tags'],
      ['/memory/add', { text: 'Importance must be a number here.', importance: 'high' }, 'importance'],
      ['/memory/add', { text: 'Metadata must be an object here.', metadata: ['a'] }, 'metadata'],
      ['/memory/add', { text: 'Deduplicate must be a boolean value.', deduplicate: 'yes' }, 'deduplicate'],
      ['/memory/query', { query: 42 }, 'query'],
      ['/memory/query', { query: 'cars', k: 'five' }, 'k'],
      ['/memory/query', { query: 'cars', filters: { tags: 'x' } }, 'filters.tags'],
      ['/memory/bulk-add', { items: { text: 'not an array of items' } }, 'items'],
      ['/v1/memory/query', { tenant_id: 'default', user_id: 'u', prompt: 'cars', k: '3' }, 'k'],
    ])('answers 422 naming the field for POST %s %j', async (path, body, field) => {
      const res = await rejected({ method: 'POST', path, headers: h(), body }, 422, 'VALIDATION_ERROR');
      expect(detailLocs(res.body)).toContain(field);
      expect(res.body.error.message).toContain(field);
    });

    it('answers 422 for a JSON body that is not an object', async () => {
      for (const rawBody of ['[]', 'null', '"text"', '42']) {
        await rejected({ method: 'POST', path: '/memory/add', headers: h(), rawBody }, 422, 'VALIDATION_ERROR');
      }
    });

    it('answers 422 for an add_turn whose text is not a string, with the detail clients read', async () => {
      const res = await rejected({ method: 'POST', path: '/v1/memory/add_turn', headers: h(), body: { tenant_id: 'default', user_id: endUser, text: 7 } }, 422, 'VALIDATION_ERROR');
      expect(res.body.detail).toContain("'text' must be a non-empty string");
    });
  });

  describe('missing fields', () => {
    it('names the missing field in FastAPI style', async () => {
      const q = await rejected({ method: 'POST', path: '/memory/query', headers: h(), body: {} }, 422, 'VALIDATION_ERROR');
      expect(q.body.error.message).toBe('query: Field required');
      expect(q.body.error.details).toContainEqual(expect.objectContaining({ loc: ['query'], msg: 'Field required' }));
      const add = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { tags: ['x'] } }, 422, 'VALIDATION_ERROR');
      expect(add.body.error.message).toBe('text: Field required');
      const v1 = await rejected({ method: 'POST', path: '/v1/memory/recall', headers: h(), body: { tenant_id: 'default', user_id: endUser } }, 422, 'VALIDATION_ERROR');
      expect(v1.body.error.message).toBe('prompt: Field required');
      const bulk = await rejected({ method: 'POST', path: '/memory/bulk-add', headers: h(), body: {} }, 422, 'VALIDATION_ERROR');
      expect(bulk.body.error.message).toBe('items: Field required');
      const forget = await rejected({ method: 'DELETE', path: '/memory/forget', headers: h(), body: {} }, 422, 'VALIDATION_ERROR');
      expect(forget.body.error.message).toBe('memory_ids: Field required');
    });

    it('answers 422 "body: Field required" for an empty body where one is required', async () => {
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h() }, 422, 'VALIDATION_ERROR');
      expect(res.body.error.message).toBe('body: Field required');
    });
  });

  describe('limits', () => {
    it('refuses text shorter than 10 characters, also after trimming', async () => {
      for (const text of ['too short', '   short        ']) {
        const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { text } }, 422, 'VALIDATION_ERROR');
        expect(res.body.error.message).toBe('text: text must be at least 10 characters');
      }
      await rejected({ method: 'PATCH', path: `/memory/${memoryId}`, headers: h(), body: { text: 'tiny' } }, 422, 'VALIDATION_ERROR');
    });

    it('refuses text longer than 50,000 characters', async () => {
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { text: 'x'.repeat(50_001) } }, 422, 'VALIDATION_ERROR');
      expect(detailLocs(res.body)).toContain('text');
    });

    it.each([
      [{ importance: 1.5 }, 'importance'],
      [{ importance: -0.1 }, 'importance'],
      [{ ttl_minutes: 0 }, 'ttl_minutes'],
      [{ ttl_minutes: 1.5 }, 'ttl_minutes'],
      [{ tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, 'tags'],
      [{ tags: [''] }, 'tags.0'],
    ])('refuses out-of-range %j', async (extra, field) => {
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { text: 'A perfectly long enough memory text.', ...extra } }, 422, 'VALIDATION_ERROR');
      expect(detailLocs(res.body)).toContain(field);
    });

    it('refuses 51 bulk items and an empty item list', async () => {
      const items = Array.from({ length: 51 }, (_, i) => ({ text: `Bulk memory number ${i} is long enough.` }));
      const res = await rejected({ method: 'POST', path: '/memory/bulk-add', headers: h(), body: { items } }, 422, 'VALIDATION_ERROR');
      expect(res.body.error.message).toBe('items: items must contain at most 50 items');
      await rejected({ method: 'POST', path: '/memory/bulk-add', headers: h(), body: { items: [] } }, 422, 'VALIDATION_ERROR');
    });

    it.each([
      [{ query: 'cars', k: 0 }, 'k'],
      [{ query: '   ' }, 'query'],
      [{ query: 'cars', filters: { since: 'last tuesday' } }, 'filters.since'],
      [{ query: 'cars', filters: { since: '2025-02-01', until: '2025-01-01' } }, 'filters.since'],
      [{ query: 'cars', tier: 'lukewarm' }, 'tier'],
    ])('refuses the query %j', async (body, field) => {
      const res = await rejected({ method: 'POST', path: '/memory/query', headers: h(), body }, 422, 'VALIDATION_ERROR');
      expect(detailLocs(res.body)).toContain(field);
    });

    it('refuses forget lists that are empty or hold ids that are not memory ids', async () => {
      await rejected({ method: 'DELETE', path: '/memory/forget', headers: h(), body: { memory_ids: [] } }, 422, 'VALIDATION_ERROR');
      for (const bad of ['abc', -3, 1.5, 'm_', 'm_-1']) {
        await rejected({ method: 'DELETE', path: '/memory/forget', headers: h(), body: { memory_ids: [memoryId, bad] } }, 422, 'VALIDATION_ERROR');
      }
      expect((await server.call('GET', `/memory/${memoryId}`, { headers: h() })).status).toBe(200);
    });

    it('refuses a bad limit on the v1 list', async () => {
      for (const limit of ['abc', '-1', '2.5']) {
        await rejected({ method: 'GET', path: `/v1/memory/default/${endUser}/list?limit=${limit}`, headers: { 'X-API-Key': key } }, 422, 'VALIDATION_ERROR');
      }
    });

    it('refuses JSON nested deeper than the parser allows', async () => {
      let nested: unknown = 'leaf';
      for (let i = 0; i < 40; i++) nested = { n: nested };
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { text: 'Deeply nested metadata is refused.', metadata: nested } }, 422, 'VALIDATION_ERROR');
      expect(res.body.error.message).toMatch(/nesting/);
      const arrays = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
      await rejected({ method: 'POST', path: '/memory/query', headers: h(), rawBody: arrays }, 422, 'VALIDATION_ERROR');
    });
  });

  describe('oversized bodies', () => {
    it('answers 413 PAYLOAD_TOO_LARGE past MAX_BODY_BYTES', async () => {
      const text = 'x'.repeat(MAX_BODY_BYTES);
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), body: { text } }, 413, 'PAYLOAD_TOO_LARGE');
      expect(res.body.error.message).toContain(String(MAX_BODY_BYTES));
      // the same through the route that reads the end user from the body before anything else
      await rejected({ method: 'POST', path: '/memory/add', headers: { 'X-API-Key': key }, body: { end_user_id: endUser, text } }, 413, 'PAYLOAD_TOO_LARGE');
    });

    it('answers 413 PAYLOAD_TOO_LARGE past the server hard cap of 10 MiB without reading it all', async () => {
      const res = await rejected({ method: 'POST', path: '/memory/add', headers: h(), rawBody: `{"text":"${'y'.repeat(10 * 1024 * 1024 + 16)}"}` }, 413, 'PAYLOAD_TOO_LARGE');
      expect(res.body.error.message).toContain(String(MAX_BODY_BYTES));
    });

    it('keeps serving after refusing oversized bodies', async () => {
      expect((await server.call('GET', `/memory/${memoryId}`, { headers: h() })).status).toBe(200);
    });
  });

  describe('routing', () => {
    it.each([
      ['GET', '/nope'],
      ['POST', '/memory/add/extra'],
      ['GET', '/memory/1/2'],
      ['DELETE', '/v1/memory/add_turn/x'],
      ['GET', '/%E0%A4%A'],
    ])('answers 404 NOT_FOUND for %s %s, with or without credentials', async (method, path) => {
      await rejected({ method, path }, 404, 'NOT_FOUND');
      await rejected({ method, path, headers: h() }, 404, 'NOT_FOUND');
    });

    it.each([
      ['PUT', '/memory/add', 'POST'],
      ['GET', '/memory/add', 'POST'],
      ['GET', '/memory/forget', 'DELETE'],
      ['POST', '/memory/1', 'DELETE, GET, PATCH'],
      ['DELETE', '/health', 'GET'],
      ['DELETE', '/memory/export', 'GET'],
      ['GET', '/auth/login', 'POST'],
    ])('answers 405 with an Allow header for %s %s', async (method, path, allow) => {
      const res = await rejected({ method, path, headers: h(), body: method === 'GET' ? undefined : { text: 'A body that is never read by anyone.' } }, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.get('allow')).toBe(allow);
    });

    it.each(['abc', '-1', '1.5', '0', '1e3', '99999999999999999999'])('answers 422 for memory id %s in the path', async (id) => {
      for (const method of ['GET', 'PATCH', 'DELETE']) {
        const res = await rejected({ method, path: `/memory/${id}`, headers: h(), body: method === 'PATCH' ? { tags: ['x'] } : undefined }, 422, 'VALIDATION_ERROR');
        expect(detailLocs(res.body)).toContain('id');
      }
    });

    it('answers 422 for a path segment that is not valid URL encoding', async () => {
      await rejected({ method: 'GET', path: `/v1/memory/default/%E0%A4%A/list`, headers: { 'X-API-Key': key } }, 422, 'VALIDATION_ERROR');
    });
  });

  describe('content types and headers', () => {
    it.each(['application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'])('answers 415 for Content-Type %s', async (contentType) => {
      await rejected({ method: 'POST', path: '/memory/add', headers: h({ 'content-type': contentType }), rawBody: '{"text":"A memory sent with the wrong type."}' }, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('refuses malformed scope headers', async () => {
      await rejected({ method: 'POST', path: '/memory/add', headers: h({ 'X-Project-ID': 'not a project!' }), body: { text: 'A memory with a broken project header.' } }, 400, 'INVALID_PROJECT_ID');
      await rejected({ method: 'POST', path: '/memory/add', headers: h({ 'X-Tenant-ID': 'bad tenant/../id' }), body: { text: 'A memory with a broken tenant header.' } }, 400, 'INVALID_TENANT_ID_FORMAT');
      await rejected({ method: 'POST', path: '/memory/add', headers: keyHeaders(key, 'tab\there'), body: { text: 'A memory with a control character user.' } }, 400, 'INVALID_END_USER_ID');
      await rejected({ method: 'POST', path: '/memory/add', headers: keyHeaders(key, 'u'.repeat(257)), body: { text: 'A memory with an overlong end user id.' } }, 400, 'INVALID_END_USER_ID');
      await rejected({ method: 'POST', path: '/memory/add', headers: { 'X-API-Key': key }, body: { text: 'A memory that names no end user at all.' } }, 400, 'MISSING_END_USER_ID');
    });

    it('refuses missing, malformed and unknown credentials with 401', async () => {
      await rejected({ method: 'POST', path: '/memory/add', body: { text: 'Nobody is calling with credentials.' } }, 401, 'UNAUTHORIZED');
      await rejected({ method: 'POST', path: '/memory/add', headers: keyHeaders('ms_live_doesnotexist0000', endUser), body: { text: 'An unknown key is calling here.' } }, 401, 'INVALID_API_KEY');
      await rejected({ method: 'POST', path: '/memory/add', headers: keyHeaders('not-a-key', endUser), body: { text: 'A malformed key is calling here.' } }, 401, 'INVALID_API_KEY');
      await rejected({ method: 'POST', path: '/memory/add', headers: { Authorization: 'Basic Zm9vOmJhcg==', 'X-End-User-ID': endUser }, body: { text: 'A Basic credential is calling here.' } }, 401, 'UNAUTHORIZED');
      await rejected({ method: 'POST', path: '/memory/add', headers: { Authorization: 'Bearer a.b.c', 'X-End-User-ID': endUser }, body: { text: 'A forged token is calling here.' } }, 401, 'INVALID_TOKEN');
    });

    it('does not create an end user for a request it rejects', async () => {
      const fresh = 'never-seen-end-user';
      await rejected({ method: 'POST', path: '/memory/add', headers: keyHeaders(key, fresh), body: { text: 'short' } }, 422, 'VALIDATION_ERROR');
      await rejected({ method: 'GET', path: '/memory/abc', headers: keyHeaders(key, fresh) }, 422, 'VALIDATION_ERROR');
      await rejected({ method: 'POST', path: '/v1/memory/query', headers: { 'X-API-Key': key }, body: { tenant_id: 'default', user_id: fresh } }, 422, 'VALIDATION_ERROR');
    });

    it('echoes a well-formed X-Request-ID and replaces a malformed one', async () => {
      const given = 'client-request-0001';
      const echoed = await rejected({ method: 'POST', path: '/memory/add', headers: h({ 'X-Request-ID': given }), body: { text: 'short' } }, 422, 'VALIDATION_ERROR');
      expect(echoed.body.request_id).toBe(given);
      const replaced = await rejected({ method: 'POST', path: '/memory/add', headers: h({ 'X-Request-ID': 'bad id' }), body: { text: 'short' } }, 422, 'VALIDATION_ERROR');
      expect(replaced.body.request_id).not.toBe('bad id');
    });
  });

  it('left the one valid memory as it was', async () => {
    const res = await server.call('GET', `/memory/${memoryId}`, { headers: h() });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ text: 'A valid memory that bad requests must not disturb.', tags: [] });
  });
});
