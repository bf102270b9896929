export {
  createLocalEmbedder,
  DEFAULT_TUNING,
  LOCAL_EMBEDDER_MODEL,
  type LocalEmbedderOptions,
  type LocalEmbedderTuning,
} from './local-embedder.ts';
export type { LocalEmbedder } from './local-embedder.ts';
