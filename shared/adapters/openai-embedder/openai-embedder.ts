import { DependencyError } from '../../errors.ts';
import type { Embedder } from '../../ports/embedder.ts';

export interface OpenAiEmbedderOptions {
  /** base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`; requests go to `${url}/embeddings` */
  url: string;
  model: string;
  /** sent as `Authorization: Bearer …` when set */
  apiKey?: string;
  /** vector length; required unless the model is a known OpenAI model */
  dimension?: number;
  /** send `dimensions` in the request (text-embedding-3-* can shorten vectors; most other servers reject it) */
  requestDimensions?: boolean;
  /** texts per HTTP request */
  maxBatchSize?: number;
  /** longer texts are cut to this many characters: servers reject inputs over their token limit, and the rest rarely changes the vector */
  maxInputChars?: number;
  /** per attempt */
  timeoutMs?: number;
  /** attempts after the first one, on 429, 5xx, timeouts and network errors */
  maxRetries?: number;
  /** first backoff delay; doubles each retry, with full jitter */
  baseDelayMs?: number;
  /** cap on any single wait, including a server's Retry-After */
  maxDelayMs?: number;
  /** how to wait between attempts (tests record the delays instead of sleeping) */
  sleep?: (ms: number) => Promise<void>;
  /** 0 ≤ x < 1, for jitter */
  random?: () => number;
}

const defaults = {
  maxBatchSize: 96,
  maxInputChars: 8_000,
  timeoutMs: 10_000,
  maxRetries: 3,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  requestDimensions: false,
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
} satisfies Partial<OpenAiEmbedderOptions>;

/** Output sizes of OpenAI's own models, so the common case needs no EMBEDDINGS_DIMENSION. */
const KNOWN_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** A failure worth another attempt, with the server's requested wait when it gave one. */
class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Embeddings from any OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure-style proxies, vLLM,
 * Ollama, LiteLLM, text-embeddings-inference…). Batches, times out each request, retries transient
 * failures with exponential backoff and jitter (honouring Retry-After), and reports every failure as
 * `DependencyError('embedder')`, so the write path can fall back to "pending". Vectors are returned
 * L2-normalised, in input order.
 */
export function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const o = { ...defaults, ...options };
  const dimension = o.dimension ?? KNOWN_DIMENSIONS[o.model];
  if (!dimension) throw new Error(`the embedding dimension of model "${o.model}" is unknown: set it (EMBEDDINGS_DIMENSION)`);
  if (!(o.maxBatchSize >= 1)) throw new Error('maxBatchSize must be at least 1');
  const endpoint = `${o.url.replace(/\/+$/, '')}/embeddings`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;

  const attempt = async (input: string[]): Promise<number[][]> => {
    const signal = AbortSignal.timeout(o.timeoutMs);
    const failed = (error: unknown) =>
      new RetryableFailure(
        error instanceof Error && error.name === 'TimeoutError' ? `embeddings request timed out after ${o.timeoutMs} ms` : 'embeddings request failed',
        undefined,
        { cause: error },
      );
    let response: Response;
    let text: string;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          model: o.model,
          input,
          encoding_format: 'float',
          ...(o.requestDimensions ? { dimensions: dimension } : {}),
        }),
        signal,
      });
      text = await response.text();
    } catch (error) {
      throw failed(error);
    }
    if (response.status === 429 || response.status >= 500) {
      throw new RetryableFailure(`embeddings endpoint answered ${response.status}`, retryAfterMs(response.headers.get('retry-after')));
    }
    if (!response.ok) {
      // The body may echo the request; keep only the status so no memory text reaches logs.
      throw new DependencyError('embedder', `embeddings endpoint answered ${response.status}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new DependencyError('embedder', 'malformed embeddings response: not JSON');
    }
    return parseEmbeddings(body, input.length, dimension);
  };

  const embedBatch = async (input: string[]): Promise<number[][]> => {
    for (let retry = 0; ; retry += 1) {
      try {
        return await attempt(input);
      } catch (error) {
        if (!(error instanceof RetryableFailure)) throw error;
        if (retry >= o.maxRetries) {
          throw new DependencyError('embedder', `${error.message} (after ${retry + 1} attempts)`, { cause: error.cause });
        }
        const backoff = o.random() * Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** retry);
        await o.sleep(Math.min(o.maxDelayMs, error.retryAfterMs ?? backoff));
      }
    }
  };

  return {
    model: o.model,
    dimension,
    async warm() {},
    async embed(texts) {
      const out: number[][] = [];
      for (let i = 0; i < texts.length; i += o.maxBatchSize) {
        const batch = texts.slice(i, i + o.maxBatchSize).map((t) => (t.length > o.maxInputChars ? t.slice(0, o.maxInputChars) : t));
        out.push(...(await embedBatch(batch)));
      }
      return out;
    },
  };
}

/** Retry-After is either delay-seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function parseEmbeddings(body: unknown, expected: number, dimension: number): number[][] {
  const malformed = (why: string) => new DependencyError('embedder', `malformed embeddings response: ${why}`);
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length !== expected) throw malformed(`expected ${expected} embeddings`);
  const out: number[][] = new Array(expected);
  for (const item of data as { index?: unknown; embedding?: unknown }[]) {
    const { index, embedding } = item ?? {};
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= expected || out[index]) {
      throw malformed('bad or duplicate index');
    }
    if (!Array.isArray(embedding) || embedding.length !== dimension) throw malformed(`expected ${dimension} dimensions`);
    if (!embedding.every((x) => typeof x === 'number' && Number.isFinite(x))) throw malformed('non-numeric values');
    out[index] = normalise(embedding as number[]);
  }
  return out;
}

function normalise(vector: number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const length = Math.sqrt(sum);
  if (length === 0) throw new DependencyError('embedder', 'malformed embeddings response: zero vector');
  return vector.map((x) => x / length);
}
