import type { GuardedHttp } from './guarded-http.ts';

export const PROVIDERS = ['github', 'notion', 'google_drive', 'onedrive'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** One provider object, normalised before chunking and ingest. */
export interface NormalizedObject {
  /** stable within the provider (e.g. `issue:octo/hello#12`) */
  id: string;
  type: string;
  content: string;
  url: string | null;
  metadata: Record<string, unknown>;
}

/** What a connector's page call gets. */
export interface ConnectorContext {
  http: GuardedHttp;
  token: string;
  baseUrl: string;
  options: Record<string, unknown>;
  /** the checkpoint the last completed pass left (an ISO time or a provider delta link); null on the first pass */
  checkpoint: string | null;
  /** when the current pass started (ISO); connectors return it as their checkpoint when the pass ends */
  passStartedAt: string;
}

export interface PageResult {
  items: NormalizedObject[];
  /** objects the provider reports as deleted since the checkpoint */
  deletedIds?: string[];
  /** null when the pass is complete */
  nextCursor: string | null;
  /** set with the last page: where the next incremental pass starts */
  checkpoint?: string | null;
  /** the provider said the budget is spent: stop after this page and resume at `resetAt` */
  rateLimit?: { remaining: number; resetAt: Date | null };
}

/** A pull-sync source: one page of normalised objects per call, resumable from an opaque cursor. */
export interface Connector {
  provider: Provider;
  listPage(ctx: ConnectorContext, cursor: string | null): Promise<PageResult>;
}

/** The provider refused the token (401, or 403 that is not a rate limit): retrying cannot help. */
export class ProviderAuthError extends Error {
  override readonly name = 'ProviderAuthError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The provider asked us to come back later (429, or GitHub's 403 with x-ratelimit-remaining 0). */
export class ProviderRateLimitError extends Error {
  override readonly name = 'ProviderRateLimitError';
  constructor(readonly retryAt: Date, message: string) {
    super(message);
  }
}

/** Any other provider failure (404 of a configured resource, 5xx, bad JSON); the task retries. */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(readonly status: number | null, message: string) {
    super(message);
  }
}
