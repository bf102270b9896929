export { createBedrockSummarizer, type BedrockSummarizerOptions } from './bedrock-summarizer.ts';
