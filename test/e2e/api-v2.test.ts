import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, tableCounts, type TestServer } from '../support/server.ts';
import { keyWithScopes } from '../support/recall-helpers.ts';

describe('/api/v2 memory routes over HTTP', () => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  let otherKey: string;
  const u = 'v2-user';
  const h = () => keyHeaders(key, u);

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key, tenantId } = await server.newTenant('v2'));
    ({ apiKey: otherKey } = await server.newTenant('other'));
  });
  afterAll(() => server.stop());

  it('adds, gets, patches, queries and deletes a memory with the /memory/* contract', async () => {
    const add = await server.call('POST', '/api/v2/memory/add', { headers: h(), body: { text: 'Version two stores memories like version one.', tags: ['v2'] } });
    expect(add.status).toBe(201);
    const id = add.body.id;
    expect(add.body).toMatchObject({ text: 'Version two stores memories like version one.', tags: ['v2'], user_id: u });
    expect((await server.call('GET', `/api/v2/memory/${id}`, { headers: h() })).body.id).toBe(id);
    // Both planes see the same memory.
    expect((await server.call('GET', `/memory/${id}`, { headers: h() })).body.text).toBe(add.body.text);
    const patched = await server.call('PATCH', `/api/v2/memory/${id}`, { headers: h(), body: { tags: ['v2', 'patched'] } });
    expect(patched.body.tags).toEqual(['v2', 'patched']);
    const q = await server.call('POST', '/api/v2/memory/query', { headers: h(), body: { query: 'how does version two store memories', k: 1 } });
    expect(q.body.memories[0].id).toBe(id);
    const dup = await server.call('POST', '/api/v2/memory/add', { headers: h(), body: { text: 'Version two stores memories like version one.' } });
    expect(dup.body).toEqual({ status: 'skipped', reason: 'duplicate', existing_id: id });
    expect((await server.call('DELETE', `/api/v2/memory/${id}`, { headers: h() })).body).toEqual({ deleted: true, id });
    expect((await server.call('GET', `/api/v2/memory/${id}`, { headers: h() })).status).toBe(404);
  });

  it('pages through the list with an opaque cursor, newest first, without repeats or gaps', async () => {
    const eu = 'v2-pager';
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await server.call('POST', '/api/v2/memory/add', { headers: keyHeaders(key, eu), body: { text: `Paged memory number ${i} for the cursor test.` } })).body.id);
    }
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: any } = await server.call('GET', `/api/v2/memory/list?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { headers: keyHeaders(key, eu) });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['items', 'next_cursor']);
      seen.push(...res.body.items.map((m: any) => m.id));
      cursor = res.body.next_cursor;
      pages++;
      if (pages === 1) {
        // A memory added between pages appears on no later page and shifts nothing.
        await server.call('POST', '/api/v2/memory/add', { headers: keyHeaders(key, eu), body: { text: 'Added while paging, newer than every cursor.' } });
      }
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it('answers errors in the canonical envelope only (no legacy detail), unlike /memory/*', async () => {
    const v2 = await server.call('POST', '/api/v2/memory/add', { headers: h(), body: { text: 'short' } });
    expect(v2.status).toBe(422);
    expect(Object.keys(v2.body).sort()).toEqual(['error', 'request_id']);
    expect(v2.body.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(v2.body.error.details[0].loc).toEqual(['text']);
    const v1 = await server.call('POST', '/memory/add', { headers: h(), body: { text: 'short' } });
    expect(v1.body.detail).toBeTruthy();
    const unauth = await server.call('GET', '/api/v2/memory/list', {});
    expect(unauth.status).toBe(401);
    expect(unauth.body.detail).toBeUndefined();
    expect(unauth.body.error.code).toBe('UNAUTHORIZED');
    const missing = await server.call('GET', '/api/v2/memory/list', { headers: { 'X-API-Key': key } });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ error: { code: 'MISSING_END_USER_ID', message: expect.any(String) }, request_id: missing.headers.get('x-request-id') });
  });

  it('rejects a forged cursor (422), a read-only key on writes (403) and writes nothing', async () => {
    const readOnly = await keyWithScopes(server, tenantId, ['memories:read']);
    const before = await tableCounts(server);
    const forged = await server.call('GET', '/api/v2/memory/list?cursor=not-a-cursor', { headers: h() });
    expect(forged.status).toBe(422);
    expect(forged.body.error.message).toMatch(/cursor/);
    const denied = await server.call('POST', '/api/v2/memory/add', { headers: keyHeaders(readOnly, u), body: { text: 'A read-only key cannot store this.' } });
    expect(denied.status).toBe(403);
    expect(denied.body.detail).toBeUndefined();
    expect(await tableCounts(server)).toEqual(before);
  });

  it('never shows another tenant\'s memories', async () => {
    const id = (await server.call('POST', '/api/v2/memory/add', { headers: h(), body: { text: 'Tenant one keeps this memory private.' } })).body.id;
    expect((await server.call('GET', `/api/v2/memory/${id}`, { headers: keyHeaders(otherKey, u) })).status).toBe(404);
    expect((await server.call('GET', '/api/v2/memory/list', { headers: keyHeaders(otherKey, u) })).body.items).toEqual([]);
    expect((await server.call('DELETE', `/api/v2/memory/${id}`, { headers: keyHeaders(otherKey, u) })).status).toBe(404);
  });
});
