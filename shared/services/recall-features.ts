import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';
import type { Embedder } from '../ports/embedder.ts';
import type { Summarizer } from '../ports/summarizer.ts';
import type { VectorStore } from '../ports/vector-store.ts';
import { cl100kTokenCounter } from '../text/token-counter.ts';
import { MemoryInsightsService } from './memory-insights.ts';
import { MemoryLifecycleService } from './memory-lifecycle.ts';
import type { MemoryService, OutboxPort } from './memory-service.ts';
import { RecallService } from './recall-service.ts';
import { RelatedMemories } from './related-memories.ts';
import type { RefusalLog } from './refusal-log.ts';

export interface RecallFeatures {
  recall: RecallService;
  lifecycle: MemoryLifecycleService;
  insights: MemoryInsightsService;
  refusals: RefusalLog;
  /** `traversal_depth` on /memory/query: related memories beside the top-k */
  related: RelatedMemories;
}

export interface RecallFeaturesDeps {
  db: Kysely<Database>;
  vectors: VectorStore;
  embedder: Embedder;
  cache: Cache;
  clock: Clock;
  outbox: OutboxPort;
  memories: MemoryService;
  refusals: RefusalLog;
  summarizer: Summarizer;
}

/** The services behind the recall, lifecycle, explainability and refusal routes, built once by the composition root. */
export function createRecallFeatures(deps: RecallFeaturesDeps): RecallFeatures {
  return {
    recall: new RecallService({ memories: deps.memories, summarizer: deps.summarizer, tokenCounter: cl100kTokenCounter }),
    lifecycle: new MemoryLifecycleService({ db: deps.db, vectors: deps.vectors, cache: deps.cache, clock: deps.clock, outbox: deps.outbox, memories: deps.memories, refusals: deps.refusals }),
    insights: new MemoryInsightsService({ db: deps.db, memories: deps.memories, embedder: deps.embedder, vectors: deps.vectors }),
    refusals: deps.refusals,
    related: new RelatedMemories({ db: deps.db, vectors: deps.vectors, memories: deps.memories }),
  };
}
