export { createOpenSearchClient, type OpenSearchClientOptions } from './opensearch-client.ts';
export {
  cosineFromScore,
  createOpenSearchVectorStore,
  PER_USER_INDEX_PATTERN,
  type OpenSearchVectorStoreOptions,
} from './opensearch-vector-store.ts';
