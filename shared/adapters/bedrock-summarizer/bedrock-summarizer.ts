import { ConverseCommand, type BedrockRuntimeClient, type ConverseCommandOutput } from '@aws-sdk/client-bedrock-runtime';
import { DependencyError } from '../../errors.ts';
import type { SummarizeOptions, Summarizer } from '../../ports/summarizer.ts';

export interface BedrockSummarizerOptions {
  client: BedrockRuntimeClient;
  /** a model that supports the Converse API, e.g. anthropic.claude-3-haiku-20240307-v1:0 */
  modelId: string;
  /** upper bound on the characters of memory text sent in one request (longest texts are clipped first) */
  maxInputChars?: number;
  maxOutputTokens?: number;
  /** retries of throttling / 5xx answers, with full-jitter backoff */
  maxRetries?: number;
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const RETRYABLE = new Set(['ThrottlingException', 'ServiceUnavailableException', 'InternalServerException', 'ModelNotReadyException', 'ModelTimeoutException']);

const SYSTEM_PROMPT = [
  'You summarise notes a user asked an assistant to remember.',
  'Write a faithful summary in plain sentences: no preamble, no lists, no markdown, nothing that is not in the notes.',
  'Keep names, numbers, dates and decisions exactly as written.',
].join(' ');

/**
 * Summarizer port over the Bedrock Converse API: one ConverseCommand per summary, temperature 0,
 * the notes numbered in one user message and the sentence budget in the instruction. Failures after
 * the retries become DependencyError('summarizer'), so the summarization task is retried by its queue.
 */
export function createBedrockSummarizer(options: BedrockSummarizerOptions): Summarizer {
  const opts = { maxInputChars: 24_000, maxOutputTokens: 512, maxRetries: 3, baseDelayMs: 200, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), ...options };
  return {
    async summarize(texts: string[], { maxSentences }: SummarizeOptions): Promise<string> {
      if (texts.length === 0) return '';
      const notes = clipTotal(texts, opts.maxInputChars).map((t, i) => `${i + 1}. ${t}`).join('\n');
      const command = new ConverseCommand({
        modelId: opts.modelId,
        system: [{ text: SYSTEM_PROMPT }],
        messages: [{ role: 'user', content: [{ text: `Summarise these ${texts.length} notes in at most ${Math.max(1, maxSentences)} sentences.\n\n${notes}` }] }],
        inferenceConfig: { maxTokens: opts.maxOutputTokens, temperature: 0 },
      });
      for (let attempt = 0; ; attempt++) {
        let out: ConverseCommandOutput;
        try {
          out = await opts.client.send(command);
        } catch (error) {
          const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
          const retryable = RETRYABLE.has(e?.name ?? '') || (e?.$metadata?.httpStatusCode ?? 0) >= 500;
          if (!retryable || attempt >= opts.maxRetries) {
            throw new DependencyError('summarizer', `Bedrock Converse ${retryable ? 'kept failing' : 'refused the request'}: ${e?.name ?? 'Error'}`, { cause: error });
          }
          await opts.sleep(Math.random() * opts.baseDelayMs * 2 ** attempt);
          continue;
        }
        const text = (out.output?.message?.content ?? []).map((c) => ('text' in c && typeof c.text === 'string' ? c.text : '')).join('').trim();
        if (!text) throw new DependencyError('summarizer', `Bedrock Converse returned no text (stop reason ${out.stopReason ?? 'unknown'})`);
        return text;
      }
    },
  };
}

/** Keeps the total under `max` characters by clipping the longest texts first. */
function clipTotal(texts: string[], max: number): string[] {
  const total = texts.reduce((n, t) => n + t.length, 0);
  if (total <= max) return texts;
  const share = Math.max(80, Math.floor(max / texts.length));
  return texts.map((t) => (t.length > share ? `${t.slice(0, share - 1)}…` : t));
}
