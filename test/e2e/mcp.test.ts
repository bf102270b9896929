import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { bearer, signupOwner } from '../support/accounts.ts';

describe('MCP endpoint (streamable HTTP, stateless) with the SDK client', () => {
  let server: TestServer;
  let key: string;
  let tenantId: string;
  const clients: Client[] = [];

  async function connect(headers: Record<string, string>): Promise<Client> {
    const client = new Client({ name: 'memorysync-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers } }));
    clients.push(client);
    return client;
  }
  const payload = (result: any) => JSON.parse(result.content[0].text);

  beforeAll(async () => {
    server = await startTestServer();
    ({ apiKey: key, tenantId } = await server.newTenant());
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await server.stop();
  });

  it('lists the four memory tools', async () => {
    const client = await connect(keyHeaders(key, 'mcp-alice'));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['add_memory', 'forget', 'query_memories', 'recall']);
    expect(tools.find((t) => t.name === 'add_memory')!.inputSchema.required).toContain('text');
  });

  it("adds, queries, recalls and forgets memories of the caller's end user only", async () => {
    const alice = await connect(keyHeaders(key, 'mcp-alice'));
    const added = payload(await alice.callTool({ name: 'add_memory', arguments: { text: 'My sister Marta lives in Lisbon and teaches piano.', tags: ['family'] } }));
    expect(added).toMatchObject({ status: 'stored' });
    await alice.callTool({ name: 'add_memory', arguments: { text: 'The quarterly report is due on the fifth of March.' } });
    // the memory is the end user's, as seen through the HTTP API with the same key
    const viaHttp = await server.call('GET', `/memory/${added.id}`, { headers: keyHeaders(key, 'mcp-alice') });
    expect(viaHttp.body).toMatchObject({ text: 'My sister Marta lives in Lisbon and teaches piano.', source: 'mcp', tags: ['family'] });

    const found = payload(await alice.callTool({ name: 'query_memories', arguments: { query: 'where does my sibling live?', k: 2 } }));
    expect(found.memories[0].id).toBe(added.id);
    expect(found.memories[0].score).toBeGreaterThan(0);
    const recall = await alice.callTool({ name: 'recall', arguments: { query: 'piano teacher in the family', k: 1 } });
    expect((recall.content as any)[0].text).toBe('- My sister Marta lives in Lisbon and teaches piano.');

    const bob = await connect(keyHeaders(key, 'mcp-bob'));
    expect(payload(await bob.callTool({ name: 'query_memories', arguments: { query: 'sister Lisbon piano' } })).memories).toEqual([]);
    expect(payload(await bob.callTool({ name: 'forget', arguments: { memory_ids: [added.id] } }))).toEqual({ deleted_ids: [], skipped_ids: [added.id] });

    expect(payload(await alice.callTool({ name: 'forget', arguments: { memory_ids: [added.id] } }))).toEqual({ deleted_ids: [added.id], skipped_ids: [] });
    expect((await server.call('GET', `/memory/${added.id}`, { headers: keyHeaders(key, 'mcp-alice') })).status).toBe(404);
  });

  it('reports a duplicate instead of storing it twice, and rejects invalid tool input', async () => {
    const client = await connect(keyHeaders(key, 'mcp-carol'));
    const first = payload(await client.callTool({ name: 'add_memory', arguments: { text: 'Carol prefers aisle seats on long flights.' } }));
    const again = payload(await client.callTool({ name: 'add_memory', arguments: { text: 'Carol prefers aisle seats on long flights.' } }));
    expect(again).toEqual({ status: 'skipped', reason: 'duplicate', existing_id: first.id });
    const tooShort = await client.callTool({ name: 'add_memory', arguments: { text: 'short' } });
    expect(tooShort.isError).toBe(true);
  });

  it('needs credentials and an end user like every memory route, and memories:write to add or forget', async () => {
    await expect(connect({})).rejects.toMatchObject({ code: 401 });
    await expect(connect({ 'X-API-Key': key })).rejects.toMatchObject({ code: 400, message: expect.stringContaining('MISSING_END_USER_ID') });
    const owner = await signupOwner(server);
    const readOnly = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'reader', scopes: ['memories:read'] } });
    const reader = await connect(keyHeaders(readOnly.body.key, 'mcp-dave'));
    const refused = await reader.callTool({ name: 'add_memory', arguments: { text: 'A read-only key must not store this.' } });
    expect(refused.isError).toBe(true);
    expect((refused.content as any)[0].text).toContain('memories:write');
    expect(payload(await reader.callTool({ name: 'query_memories', arguments: { query: 'anything' } })).memories).toEqual([]);
    const noRead = await server.call('POST', '/org/api-keys', { headers: bearer(owner.token), body: { name: 'writer', scopes: ['memories:write'] } });
    await expect(connect(keyHeaders(noRead.body.key, 'mcp-dave'))).rejects.toMatchObject({ code: 403, message: expect.stringContaining('INSUFFICIENT_SCOPE') });
  });

  it('writes exactly one audit row per MCP request and refuses JSON-RPC batches', async () => {
    const client = await connect(keyHeaders(key, 'mcp-erin'));
    const auditRows = () => server.app.db.kysely.selectFrom('audit_logs').select(['event_type']).where('tenant_id', '=', tenantId).orderBy('id').execute();
    const before = (await auditRows()).length;
    await client.callTool({ name: 'add_memory', arguments: { text: 'Erin keeps her bike in the basement.' } });
    const afterAdd = await auditRows();
    expect(afterAdd.slice(before).map((r) => r.event_type)).toEqual(['memory.create']);
    await client.callTool({ name: 'query_memories', arguments: { query: 'bike' } });
    expect((await auditRows()).slice(afterAdd.length).map((r) => r.event_type)).toEqual(['mcp.request']);
    const batch = await server.call('POST', '/mcp', { headers: { ...keyHeaders(key, 'mcp-erin'), accept: 'application/json, text/event-stream' }, body: [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }] });
    expect(batch.status).toBe(422);
  });

  it('answers GET /mcp with 405: this stateless server offers no SSE stream', async () => {
    const res = await server.call('GET', '/mcp', { headers: keyHeaders(key, 'x') });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});
