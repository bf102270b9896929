import { InvokeModelCommand, type BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DependencyError } from '../../errors.ts';
import type { Embedder } from '../../ports/embedder.ts';

/** Titan Text Embeddings v2 output sizes. */
export type TitanDimension = 1024 | 512 | 256;

export interface BedrockEmbedderOptions {
  client: BedrockRuntimeClient;
  /** default `amazon.titan-embed-text-v2:0` */
  modelId?: string;
  /** default 1024 */
  dimension?: TitanDimension;
  /** ask Titan for unit-length vectors (cosine = dot product); default true */
  normalize?: boolean;
  /** InvokeModel calls in flight at once per embed(); default 4 */
  concurrency?: number;
  /** retries per text after a throttling or server error; default 4 */
  maxRetries?: number;
  /** backoff base; delay before retry n is random in [0, base·2^n], capped; default 200 ms */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** inputs are cut to this many characters (Titan v2 takes 8k tokens or 50,000 characters) */
  maxInputChars?: number;
  /** injectable for tests */
  sleep?: (ms: number) => Promise<void>;
}

const defaults = {
  modelId: 'amazon.titan-embed-text-v2:0',
  dimension: 1024 as TitanDimension,
  normalize: true,
  concurrency: 4,
  maxRetries: 4,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxInputChars: 50_000,
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};

/** Failures worth retrying: throttling, capacity and server-side errors. */
const RETRYABLE = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'ServiceUnavailable',
  'InternalServerException',
  'ModelNotReadyException',
  'ModelTimeoutException',
  'TimeoutError',
]);

/**
 * Embeddings from Amazon Bedrock Titan Text Embeddings v2. Titan embeds one text per InvokeModel
 * call, so a batch runs as parallel calls with bounded concurrency; each call retries throttling
 * and 5xx with exponential backoff and full jitter. Build the client with `maxAttempts: 1` to
 * leave retrying to this adapter instead of multiplying SDK and adapter retries.
 */
export function createBedrockEmbedder(options: BedrockEmbedderOptions): Embedder {
  const opts = { ...defaults, ...options };

  async function embedOne(text: string): Promise<number[]> {
    const body = JSON.stringify({ inputText: truncate(text, opts.maxInputChars), dimensions: opts.dimension, normalize: opts.normalize });
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await opts.client.send(
          new InvokeModelCommand({ modelId: opts.modelId, contentType: 'application/json', accept: 'application/json', body }),
        );
        return parseEmbedding(response.body, opts.dimension);
      } catch (error) {
        if (error instanceof DependencyError) throw error;
        if (!isRetryable(error) || attempt >= opts.maxRetries) {
          const name = error instanceof Error ? error.name : 'Error';
          const why = isRetryable(error) ? `still failing after ${attempt + 1} attempts` : 'failed';
          throw new DependencyError('embedder', `Bedrock InvokeModel ${why}: ${name}`, { cause: error });
        }
        await opts.sleep(Math.random() * Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt));
      }
    }
  }

  return {
    model: `bedrock:${opts.modelId}:${opts.dimension}`,
    dimension: opts.dimension,
    async warm() {},
    async embed(texts: string[]): Promise<number[][]> {
      const vectors = new Array<number[]>(texts.length);
      let next = 0;
      const worker = async () => {
        while (next < texts.length) {
          const i = next++;
          vectors[i] = await embedOne(texts[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, texts.length) }, worker));
      return vectors;
    },
  };
}

function isRetryable(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  return RETRYABLE.has(e?.name ?? '') || (e?.$metadata?.httpStatusCode ?? 0) >= 500 || Boolean(e?.$retryable);
}

function parseEmbedding(body: Uint8Array | undefined, dimension: number): number[] {
  let parsed: { embedding?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(body ?? new Uint8Array()).toString('utf8'));
  } catch (cause) {
    throw new DependencyError('embedder', 'Bedrock returned a body that is not JSON', { cause });
  }
  const embedding = parsed.embedding;
  if (!Array.isArray(embedding) || embedding.length !== dimension || !embedding.every((v) => typeof v === 'number')) {
    throw new DependencyError('embedder', `Bedrock returned no ${dimension}-dimension embedding`);
  }
  return embedding as number[];
}

/** Cuts to `max` UTF-16 units without splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
