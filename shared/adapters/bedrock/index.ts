export { createBedrockEmbedder, type BedrockEmbedderOptions, type TitanDimension } from './bedrock-embedder.ts';
