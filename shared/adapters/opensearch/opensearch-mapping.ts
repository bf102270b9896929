/**
 * Index settings and mapping for memory vectors. Every filterable field is a keyword (memory_id a
 * long), so filters are term queries that the k-NN engines apply during the graph search
 * ("efficient filtering") instead of after it. `dynamic: strict` rejects stray fields.
 */
export interface KnnIndexOptions {
  dimension: number;
  engine: 'faiss' | 'lucene';
  m: number;
  efConstruction: number;
  efSearch: number;
  shards?: number;
  replicas?: number;
}

export const VECTOR_FIELD = 'embedding';

export function knnIndexBody(o: KnnIndexOptions) {
  return {
    settings: {
      index: {
        knn: true,
        'knn.algo_param.ef_search': o.efSearch,
        ...(o.shards !== undefined ? { number_of_shards: o.shards } : {}),
        ...(o.replicas !== undefined ? { number_of_replicas: o.replicas } : {}),
      },
    },
    mappings: {
      dynamic: 'strict',
      properties: {
        [VECTOR_FIELD]: {
          type: 'knn_vector',
          dimension: o.dimension,
          method: {
            name: 'hnsw',
            space_type: 'cosinesimil',
            engine: o.engine,
            parameters: { m: o.m, ef_construction: o.efConstruction },
          },
        },
        memory_id: { type: 'long' },
        namespace: { type: 'keyword' },
        tier: { type: 'keyword' },
        retention_status: { type: 'keyword' },
        environment: { type: 'keyword' },
        project_id: { type: 'keyword' },
        tags: { type: 'keyword' },
        source: { type: 'keyword' },
      },
    },
  };
}
