export { PROVIDERS, ProviderAuthError, ProviderError, ProviderRateLimitError } from './types.ts';
export type { Connector, ConnectorContext, NormalizedObject, PageResult, Provider } from './types.ts';
export { createGuardedHttp } from './guarded-http.ts';
export type { GuardedHttp } from './guarded-http.ts';
export { chunkText } from './chunking.ts';
export { crawlSite, htmlToText, CrawlRefusedError } from './crawler.ts';
export { runSync, SYNC_DEFAULTS, tokenAad } from './sync-engine.ts';
export type { SyncEngineDeps, SyncOutcome, SyncSettings } from './sync-engine.ts';
export { connectors } from './connectors/index.ts';
