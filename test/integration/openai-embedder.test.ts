import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../../shared/errors.ts';
import { createLocalEmbedder } from '../../shared/adapters/local-embedder/index.ts';
import { createOpenAiEmbedder, type OpenAiEmbedderOptions } from '../../shared/adapters/openai-embedder/index.ts';
import { embedderContract } from '../contract/embedder.ts';

/**
 * A real HTTP server speaking the OpenAI embeddings API, computing vectors with the local embedder.
 * It answers in reverse order (legal: clients must order by `index`). Tests queue special answers.
 */
interface ReceivedRequest {
  method?: string;
  url?: string;
  authorization?: string;
  body: { model?: string; input?: string[]; dimensions?: number };
}
type Answer = (res: ServerResponse, request: ReceivedRequest) => void | Promise<void>;

const local = createLocalEmbedder();
const API_KEY = `sk-test-${Math.random().toString(36).slice(2)}`;
const received: ReceivedRequest[] = [];
const queuedAnswers: Answer[] = [];
let server: Server;
let baseUrl: string;

const embeddingsAnswer: Answer = async (res, request) => {
  const input = request.body.input ?? [];
  const vectors = await local.embed(input);
  const data = vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })).reverse();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'list', data, model: request.body.model, usage: { prompt_tokens: 0, total_tokens: 0 } }));
};

const status = (code: number, headers: Record<string, string> = {}): Answer => (res) => {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { message: `status ${code}` } }));
};
const neverAnswer: Answer = () => {};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  await local.warm();
  server = createServer(async (req, res) => {
    const request: ReceivedRequest = {
      method: req.method,
      url: req.url,
      authorization: req.headers.authorization,
      body: JSON.parse((await readBody(req)) || '{}'),
    };
    received.push(request);
    if (req.method !== 'POST' || req.url !== '/v1/embeddings') return status(404)(res, request);
    await (queuedAnswers.shift() ?? embeddingsAnswer)(res, request);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received.length = 0;
  queuedAnswers.length = 0;
});

const sleeps: number[] = [];
function embedderFor(overrides: Partial<OpenAiEmbedderOptions> = {}) {
  sleeps.length = 0;
  return createOpenAiEmbedder({
    url: baseUrl,
    model: 'local-sif-wink100-v1',
    dimension: local.dimension,
    apiKey: API_KEY,
    baseDelayMs: 100,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...overrides,
  });
}

async function expectEmbedderError(promise: Promise<unknown>, message: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DependencyError);
  expect((error as DependencyError).dependency).toBe('embedder');
  expect((error as DependencyError).message).toMatch(message);
}

embedderContract('OpenAI-compatible embedder over HTTP', () => embedderFor());

describe('OpenAI-compatible embedder', () => {
  it('posts the model and texts to {url}/embeddings with the API key as a bearer token', async () => {
    await embedderFor({ url: `${baseUrl}/` }).embed(['likes hiking']);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      method: 'POST',
      url: '/v1/embeddings',
      authorization: `Bearer ${API_KEY}`,
      body: { model: 'local-sif-wink100-v1', input: ['likes hiking'] },
    });
    expect(received[0].body.dimensions).toBeUndefined();
  });

  it('sends no Authorization header without an API key, and asks for a dimension only when told to', async () => {
    await embedderFor({ apiKey: undefined, requestDimensions: true }).embed(['x']);
    expect(received[0].authorization).toBeUndefined();
    expect(received[0].body.dimensions).toBe(local.dimension);
  });

  it('splits large inputs into batches and returns vectors in input order', async () => {
    const texts = Array.from({ length: 10 }, (_, i) => `memory number ${i} about ${i % 2 ? 'cats' : 'taxes'}`);
    const vectors = await embedderFor({ maxBatchSize: 4 }).embed(texts);
    expect(received.map((r) => r.body.input)).toEqual([texts.slice(0, 4), texts.slice(4, 8), texts.slice(8)]);
    const expected = await local.embed(texts);
    vectors.forEach((v, i) => v.forEach((x, d) => expect(x).toBeCloseTo(expected[i][d], 6)));
  });

  it('cuts texts longer than maxInputChars before sending them', async () => {
    await embedderFor({ maxInputChars: 100 }).embed(['a'.repeat(250), 'short']);
    expect(received[0].body.input).toEqual(['a'.repeat(100), 'short']);
  });

  it('retries a 500 with exponential backoff and jitter, then succeeds', async () => {
    queuedAnswers.push(status(500), status(503));
    const [vector] = await embedderFor().embed(['retry me']);
    expect(vector).toHaveLength(local.dimension);
    expect(received).toHaveLength(3);
    // full jitter with random() = 0.5: half of 100 ms, then half of 200 ms
    expect(sleeps).toEqual([50, 100]);
  });

  it('waits as long as a 429 Retry-After asks, capped by maxDelayMs', async () => {
    queuedAnswers.push(status(429, { 'retry-after': '2' }), status(429, { 'retry-after': '120' }));
    await embedderFor({ maxDelayMs: 30_000 }).embed(['rate limited']);
    expect(sleeps).toEqual([2_000, 30_000]);
    expect(received).toHaveLength(3);
  });

  it('gives up after maxRetries with a DependencyError', async () => {
    queuedAnswers.push(status(502), status(502), status(502));
    await expectEmbedderError(embedderFor({ maxRetries: 2 }).embed(['down']), /502.*3 attempts/);
    expect(received).toHaveLength(3);
  });

  it('does not retry a client error such as 401', async () => {
    queuedAnswers.push(status(401));
    await expectEmbedderError(embedderFor().embed(['bad key']), /401/);
    expect(received).toHaveLength(1);
  });

  it('turns a request that exceeds its timeout into a DependencyError, after retrying it', async () => {
    queuedAnswers.push(neverAnswer, neverAnswer);
    await expectEmbedderError(embedderFor({ timeoutMs: 50, maxRetries: 1 }).embed(['slow']), /timed out/);
    expect(received).toHaveLength(2);
  });

  it('turns an unreachable endpoint into a DependencyError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expectEmbedderError(embedderFor({ url: `http://127.0.0.1:${port}/v1`, maxRetries: 1 }).embed(['x']), /request failed/);
    expect(sleeps).toHaveLength(1);
  });

  const okBody = (payload: string): Answer => (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(payload);
  };
  const withData = (data: unknown[]) => okBody(JSON.stringify({ object: 'list', data }));
  it.each<[string, Answer, RegExp]>([
    ['a body that is not JSON', okBody('<html>oops</html>'), /not JSON/],
    ['a body without data', okBody(JSON.stringify({ object: 'list' })), /expected 2 embeddings/],
    ['vectors of the wrong dimension', withData([0, 1].map((index) => ({ index, embedding: [1, 0, 0] }))), /dimensions/],
    ['a duplicated index', withData([0, 0].map((index) => ({ index, embedding: new Array(256).fill(0.1) }))), /index/],
    ['a non-numeric vector', withData([0, 1].map((index) => ({ index, embedding: new Array(256).fill('x') }))), /non-numeric/],
  ])('rejects %s as a malformed response', async (_, answer, message) => {
    queuedAnswers.push(answer);
    await expectEmbedderError(embedderFor().embed(['one', 'two']), message);
    expect(received).toHaveLength(1);
  });

  it('refuses to start without a dimension for a model it does not know', () => {
    expect(() => createOpenAiEmbedder({ url: baseUrl, model: 'some-local-model' })).toThrow(/EMBEDDINGS_DIMENSION/);
    expect(createOpenAiEmbedder({ url: baseUrl, model: 'text-embedding-3-small' }).dimension).toBe(1536);
  });
});
