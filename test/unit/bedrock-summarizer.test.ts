import { BedrockRuntimeClient, ThrottlingException, ValidationException, type ConverseCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { describe, expect, it } from 'vitest';
import { createBedrockSummarizer } from '#shared/adapters/bedrock-summarizer/index.ts';
import { DependencyError } from '#shared/errors.ts';

type Answer = (input: ConverseCommandInput, call: number) => unknown;

/** A BedrockRuntimeClient whose Converse requests stop at the SDK's initialize step; `answer` returns the parsed output or throws. */
function stubbedConverse(answer: Answer) {
  const inputs: ConverseCommandInput[] = [];
  const client = new BedrockRuntimeClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  client.middlewareStack.add(
    () => async (args) => {
      const input = args.input as ConverseCommandInput;
      inputs.push(input);
      return { output: { $metadata: {}, ...(answer(input, inputs.length) as object) }, response: {} };
    },
    { step: 'initialize', name: 'stubbedConverse' },
  );
  return { client, inputs };
}

const reply = (text: string) => ({ output: { message: { role: 'assistant', content: [{ text }] } }, stopReason: 'end_turn', usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 } });
const noSleep = { sleep: async () => {} };

describe('bedrock summarizer (Converse API)', () => {
  it('sends one Converse request with the notes numbered, the sentence budget, temperature 0, and returns the model text', async () => {
    const { client, inputs } = stubbedConverse(() => reply('  Ann moved the launch to May; the budget stays at 40k.  '));
    const summarizer = createBedrockSummarizer({ client, modelId: 'anthropic.claude-3-haiku-20240307-v1:0' });
    const out = await summarizer.summarize(['Launch moved to May.', 'Budget stays at 40k.'], { maxSentences: 2 });
    expect(out).toBe('Ann moved the launch to May; the budget stays at 40k.');
    expect(inputs).toHaveLength(1);
    const input = inputs[0];
    expect(input.modelId).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(input.inferenceConfig).toMatchObject({ temperature: 0 });
    expect(input.system?.[0]).toMatchObject({ text: expect.stringContaining('summar') });
    expect(input.messages).toHaveLength(1);
    expect(input.messages![0].role).toBe('user');
    const prompt = (input.messages![0].content![0] as { text: string }).text;
    expect(prompt).toContain('at most 2 sentences');
    expect(prompt).toContain('1. Launch moved to May.\n2. Budget stays at 40k.');
  });

  it('retries throttling, then answers', async () => {
    const { client, inputs } = stubbedConverse((_, call) => {
      if (call < 3) throw new ThrottlingException({ message: 'slow down', $metadata: { httpStatusCode: 429 } });
      return reply('Fine.');
    });
    const summarizer = createBedrockSummarizer({ client, modelId: 'm', ...noSleep });
    expect(await summarizer.summarize(['a note'], { maxSentences: 1 })).toBe('Fine.');
    expect(inputs).toHaveLength(3);
  });

  it('fails with a summarizer DependencyError after the last retry, at once on a validation error, and on an empty answer', async () => {
    const throttled = stubbedConverse(() => { throw new ThrottlingException({ message: 'slow down', $metadata: { httpStatusCode: 429 } }); });
    const err = await createBedrockSummarizer({ client: throttled.client, modelId: 'm', maxRetries: 2, ...noSleep }).summarize(['x'], { maxSentences: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(DependencyError);
    expect(err.dependency).toBe('summarizer');
    expect(throttled.inputs).toHaveLength(3);

    const invalid = stubbedConverse(() => { throw new ValidationException({ message: 'bad model', $metadata: { httpStatusCode: 400 } }); });
    await expect(createBedrockSummarizer({ client: invalid.client, modelId: 'm', ...noSleep }).summarize(['x'], { maxSentences: 1 })).rejects.toThrow(/refused the request: ValidationException/);
    expect(invalid.inputs).toHaveLength(1);

    const empty = stubbedConverse(() => ({ output: { message: { role: 'assistant', content: [] } }, stopReason: 'max_tokens' }));
    await expect(createBedrockSummarizer({ client: empty.client, modelId: 'm' }).summarize(['x'], { maxSentences: 1 })).rejects.toThrow(/no text \(stop reason max_tokens\)/);
  });

  it('clips long input so one request stays under the character budget, and sends nothing for no notes', async () => {
    const { client, inputs } = stubbedConverse(() => reply('ok'));
    const summarizer = createBedrockSummarizer({ client, modelId: 'm', maxInputChars: 1_000 });
    expect(await summarizer.summarize([], { maxSentences: 3 })).toBe('');
    expect(inputs).toHaveLength(0);
    await summarizer.summarize(['a'.repeat(5_000), 'b'.repeat(5_000)], { maxSentences: 3 });
    const prompt = (inputs[0].messages![0].content![0] as { text: string }).text;
    expect(prompt.length).toBeLessThan(1_300);
  });
});
