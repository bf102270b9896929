import type { Config } from '../config.ts';
import type { Summarizer } from '../ports/summarizer.ts';
import { createExtractiveSummarizer } from '../adapters/extractive-summarizer/index.ts';

/**
 * The summarization worker's Summarizer from the configuration: SUMMARIZER=bedrock uses the Converse
 * API with BEDROCK_SUMMARY_MODEL_ID (the SDK is loaded on first use, so the local runtime never
 * loads it); the default is the offline extractive summarizer.
 */
export function configuredSummarizer(config: Pick<Config, 'SUMMARIZER' | 'BEDROCK_SUMMARY_MODEL_ID' | 'AWS_REGION'>): Summarizer {
  if (config.SUMMARIZER !== 'bedrock') return createExtractiveSummarizer();
  let loaded: Promise<Summarizer> | undefined;
  const load = async () => {
    const [{ BedrockRuntimeClient }, { createBedrockSummarizer }] = await Promise.all([import('@aws-sdk/client-bedrock-runtime'), import('../adapters/bedrock-summarizer/index.ts')]);
    return createBedrockSummarizer({ client: new BedrockRuntimeClient({ region: config.AWS_REGION }), modelId: config.BEDROCK_SUMMARY_MODEL_ID });
  };
  return { summarize: async (texts, opts) => (await (loaded ??= load())).summarize(texts, opts) };
}
