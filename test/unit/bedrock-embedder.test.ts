import {
  BedrockRuntimeClient,
  ThrottlingException,
  ValidationException,
  type InvokeModelCommandInput,
} from '@aws-sdk/client-bedrock-runtime';
import { describe, expect, it } from 'vitest';
import { createBedrockEmbedder } from '#shared/adapters/bedrock/bedrock-embedder.ts';
import { DependencyError } from '#shared/errors.ts';

type Answer = (input: InvokeModelCommandInput, call: number) => Promise<unknown> | unknown;

/**
 * A BedrockRuntimeClient whose InvokeModel requests stop at the SDK's initialize step. `answer`
 * returns the parsed Titan response body, or throws the error Bedrock would raise.
 */
function stubbedBedrock(answer: Answer) {
  const inputs: InvokeModelCommandInput[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const client = new BedrockRuntimeClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  client.middlewareStack.add(
    () => async (args) => {
      const input = args.input as InvokeModelCommandInput;
      inputs.push(input);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        // let the other workers start before this call completes
        await new Promise((resolve) => setImmediate(resolve));
        const body = await answer(input, inputs.length);
        return { output: { $metadata: {}, contentType: 'application/json', body: new TextEncoder().encode(JSON.stringify(body)) }, response: {} };
      } finally {
        inFlight--;
      }
    },
    { step: 'initialize', name: 'stubbedBedrock' },
  );
  return { client, inputs, maxInFlight: () => maxInFlight };
}

const bodyOf = (input: InvokeModelCommandInput) => JSON.parse(Buffer.from(input.body as string).toString()) as {
  inputText: string;
  dimensions: number;
  normalize: boolean;
};

/** A fake embedding that encodes the input length, so results can be matched to inputs. */
const titanAnswer = (dimension: number): Answer => (input) => {
  const { inputText } = bodyOf(input);
  return { embedding: Array.from({ length: dimension }, (_, i) => (i === 0 ? inputText.length : 0)), inputTextTokenCount: 3 };
};

const throttled = () => new ThrottlingException({ message: 'Too many requests', $metadata: { httpStatusCode: 429 } });
const noSleep = { sleep: async () => {} };

describe('bedrock embedder', () => {
  it('sends one Titan v2 InvokeModel request per text with dimensions and normalize', async () => {
    const { client, inputs } = stubbedBedrock(titanAnswer(512));
    const embedder = createBedrockEmbedder({ client, dimension: 512 });
    await embedder.embed(['remember the blue door']);
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatchObject({ modelId: 'amazon.titan-embed-text-v2:0', contentType: 'application/json', accept: 'application/json' });
    expect(bodyOf(inputs[0]!)).toEqual({ inputText: 'remember the blue door', dimensions: 512, normalize: true });
    expect(embedder.dimension).toBe(512);
    expect(embedder.model).toBe('bedrock:amazon.titan-embed-text-v2:0:512');
  });

  it('returns vectors in input order', async () => {
    const { client } = stubbedBedrock(titanAnswer(256));
    const texts = ['a', 'bbbb', 'cc', 'ddddddd', 'eee', 'f'];
    const vectors = await createBedrockEmbedder({ client, dimension: 256 }).embed(texts);
    expect(vectors.map((v) => v[0])).toEqual(texts.map((t) => t.length));
    expect(vectors.every((v) => v.length === 256)).toBe(true);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const { client, inputs, maxInFlight } = stubbedBedrock(titanAnswer(256));
    await createBedrockEmbedder({ client, dimension: 256, concurrency: 3 }).embed(Array.from({ length: 10 }, (_, i) => `text ${i}`));
    expect(inputs).toHaveLength(10);
    expect(maxInFlight()).toBe(3);
  });

  it('answers an empty batch without calling Bedrock', async () => {
    const { client, inputs } = stubbedBedrock(titanAnswer(1024));
    expect(await createBedrockEmbedder({ client }).embed([])).toEqual([]);
    expect(inputs).toHaveLength(0);
  });

  it('retries a throttled request with growing backoff, then succeeds', async () => {
    const delays: number[] = [];
    const { client, inputs } = stubbedBedrock((input, call) => {
      if (call <= 2) throw throttled();
      return titanAnswer(256)(input, call);
    });
    const embedder = createBedrockEmbedder({ client, dimension: 256, baseDelayMs: 100, sleep: async (ms) => void delays.push(ms) });
    const [vector] = await embedder.embed(['hello']);
    expect(vector![0]).toBe(5);
    expect(inputs).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(0);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it('retries server errors (5xx) as well', async () => {
    const { client, inputs } = stubbedBedrock((input, call) => {
      if (call === 1) throw Object.assign(new Error('boom'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } });
      return titanAnswer(256)(input, call);
    });
    await createBedrockEmbedder({ client, dimension: 256, ...noSleep }).embed(['x']);
    expect(inputs).toHaveLength(2);
  });

  it('gives up with a DependencyError after maxRetries', async () => {
    const { client, inputs } = stubbedBedrock(() => {
      throw throttled();
    });
    const error = await createBedrockEmbedder({ client, maxRetries: 2, ...noSleep }).embed(['x']).catch((e) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error).toMatchObject({ dependency: 'embedder', message: 'Bedrock InvokeModel still failing after 3 attempts: ThrottlingException' });
    expect(inputs).toHaveLength(3);
  });

  it('does not retry a validation error', async () => {
    const { client, inputs } = stubbedBedrock(() => {
      throw new ValidationException({ message: 'Malformed input request', $metadata: { httpStatusCode: 400 } });
    });
    const error = await createBedrockEmbedder({ client, ...noSleep }).embed(['x']).catch((e) => e);
    expect(error).toMatchObject({ dependency: 'embedder', message: 'Bedrock InvokeModel failed: ValidationException' });
    expect(inputs).toHaveLength(1);
  });

  it('rejects a response whose embedding has the wrong dimension', async () => {
    const { client } = stubbedBedrock(titanAnswer(256));
    await expect(createBedrockEmbedder({ client, dimension: 1024 }).embed(['x'])).rejects.toThrow(/1024-dimension/);
  });

  it('cuts inputs longer than the model limit without splitting a character', async () => {
    const { client, inputs } = stubbedBedrock(titanAnswer(256));
    const long = 'a'.repeat(49_999) + '😀' + 'b'.repeat(10_000);
    await createBedrockEmbedder({ client, dimension: 256 }).embed([long, 'short']);
    const sent = inputs.map((i) => bodyOf(i).inputText);
    expect(sent).toContain('a'.repeat(49_999));
    expect(sent).toContain('short');
  });
});
