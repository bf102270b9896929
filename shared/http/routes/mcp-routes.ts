import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { MemoryService } from '../../services/memory-service.ts';
import { toMemoryResponse } from '../../services/memory-model.ts';
import type { EndUserScope } from '../../services/scope.ts';
import type { AuditMeta } from '../../services/identity-service.ts';
import { MAX_TEXT_CHARS, MIN_TEXT_CHARS, metadataSchema, tagsSchema } from '../schemas/common.ts';
import { publicOrigin } from '../public-origin.ts';
import type { RouteContext, RouteDefinition, RouteResult } from '../types.ts';
import { auditMeta, route } from './route.ts';
import { VERSION } from './health-routes.ts';

/**
 * One JSON-RPC 2.0 message; the SDK validates the rest. Batches are refused (MCP dropped them in
 * 2025-06-18), which also keeps every POST to one audited action.
 */
const jsonRpcMessage = z.looseObject({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.string(), z.number()]).optional(),
  method: z.string().max(256).optional(),
  params: z.unknown().optional(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
});
export const mcpBody = jsonRpcMessage;

const text = (value: unknown): CallToolResult => ({ content: [{ type: 'text', text: JSON.stringify(value) }] });
const refused = (message: string): CallToolResult => ({ content: [{ type: 'text', text: message }], isError: true });

/**
 * The four memory tools, bound to the caller's end user (resolved by the same middleware as every
 * memory route). API keys and OAuth tokens need `memories:write` to add or forget.
 */
function buildMcpServer(memories: MemoryService, owner: EndUserScope, meta: AuditMeta): McpServer {
  const server = new McpServer({ name: 'memorysync', version: VERSION }, { capabilities: { tools: {} } });
  const canWrite = owner.principal.kind === 'session' || owner.principal.scopes.includes('memories:write');
  const k = z.number().int().min(1).max(50).default(5).describe('how many memories to return');

  server.registerTool('add_memory', {
    title: 'Add memory',
    description: "Store a memory for the current end user. Duplicates of an existing memory are skipped.",
    inputSchema: { text: z.string().min(MIN_TEXT_CHARS).max(MAX_TEXT_CHARS), tags: tagsSchema.optional(), source: z.string().max(128).optional(), importance: z.number().min(0).max(1).optional(), metadata: metadataSchema.optional() },
  }, async (args) => {
    if (!canWrite) return refused('Insufficient scope. Missing: memories:write');
    const outcome = await memories.add(owner, { text: args.text, tags: args.tags, source: args.source ?? 'mcp', importance: args.importance, metadata: args.metadata }, meta);
    if (outcome.status === 'quota') return text({ status: 'ok' });
    if (outcome.status === 'duplicate') return text({ status: 'skipped', reason: 'duplicate', existing_id: outcome.existingId });
    return text({ status: 'stored', id: outcome.memory.id });
  });

  server.registerTool('query_memories', {
    title: 'Query memories',
    description: "Semantic search over the current end user's memories, best match first.",
    inputSchema: { query: z.string().min(1).max(4000), k },
  }, async (args) => {
    const result = await memories.query(owner, { query: args.query, k: args.k });
    return text({ memories: result.memories.map((m) => ({ ...toMemoryResponse(m), score: m.score })), degraded: result.degraded });
  });

  server.registerTool('recall', {
    title: 'Recall',
    description: 'A prompt-ready block of the memories most relevant to a query ("- <text>" lines; empty when nothing matches).',
    inputSchema: { query: z.string().min(1).max(4000), k },
  }, async (args) => {
    const result = await memories.query(owner, { query: args.query, k: args.k });
    return { content: [{ type: 'text', text: result.memories.map((m) => `- ${m.text.replace(/\s+/g, ' ')}`).join('\n') }] };
  });

  server.registerTool('forget', {
    title: 'Forget memories',
    description: 'Delete memories of the current end user by id; ids it does not own are skipped.',
    inputSchema: { memory_ids: z.array(z.number().int().positive()).min(1).max(100) },
  }, async (args) => {
    if (!canWrite) return refused('Insufficient scope. Missing: memories:write');
    const deleted = await memories.delete(owner, args.memory_ids, meta, 'memory.forget');
    return text({ deleted_ids: deleted, skipped_ids: args.memory_ids.filter((id) => !deleted.includes(id)) });
  });
  return server;
}

/**
 * MCP over streamable HTTP in the SDK's stateless mode (no session id, JSON answers instead of SSE):
 * a Lambda answers one request per invocation, so each POST gets its own server and transport.
 * The proxy event becomes a web-standard Request and the Response becomes the route result.
 */
async function handleMcp(memories: MemoryService, ctx: RouteContext): Promise<RouteResult> {
  const server = buildMcpServer(memories, ctx.endUser!, auditMeta(ctx));
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  try {
    await server.connect(transport);
    // The body travels parsed; its length header would describe a body this Request does not carry.
    const requestHeaders = Object.fromEntries(Object.entries(ctx.headers).filter(([k]) => k !== 'content-length'));
    const request = new Request(`${publicOrigin(ctx)}/mcp`, { method: 'POST', headers: requestHeaders });
    const response = await transport.handleRequest(request, { parsedBody: ctx.body });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      headers[key.toLowerCase() === 'content-type' ? 'Content-Type' : key] = value;
    });
    const body = await response.text();
    return body ? { status: response.status, headers: { 'Content-Type': 'application/json', ...headers }, body } : { status: response.status, headers };
  } finally {
    await server.close().catch(() => {});
  }
}

export function mcpRoutes(memories: MemoryService): RouteDefinition[] {
  return [
    route({
      method: 'POST', path: '/mcp', summary: 'Model Context Protocol (streamable HTTP, stateless): tools add_memory, query_memories, recall, forget', tags: ['mcp'],
      auth: 'any', scopes: ['memories:read'], endUser: true, body: mcpBody, responses: { 200: z.unknown(), 202: null },
      audit: { event: 'mcp.request', resource: 'memory', category: 'data' },
      handler: (ctx) => handleMcp(memories, ctx),
    }),
  ];
}
