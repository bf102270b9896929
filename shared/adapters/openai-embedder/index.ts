export { createOpenAiEmbedder, type OpenAiEmbedderOptions } from './openai-embedder.ts';
