/** The outbound webhook events of the contract (API.md §3.1). */
export const WEBHOOK_EVENTS = [
  'memory.created',
  'memory.updated',
  'memory.deleted',
  'memory.batch_created',
  'memory.queried',
  'memory.recalled',
  'memory.superseded',
  'team.member_added',
  'team.member_removed',
  'api_key.created',
  'api_key.revoked',
  'billing.usage_threshold',
  'api.rate_limited',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Sent only by `POST /org/webhooks/{id}/test`, to the one endpoint, whatever it subscribes to. */
export const WEBHOOK_TEST_EVENT = 'webhook.test';

/** Retry delays after the 1st, 2nd, … failed attempt (API.md §3.3); five retries by default. */
export const DEFAULT_RETRY_DELAYS_SECONDS = [60, 300, 1800, 7200, 21600] as const;
export const DEFAULT_MAX_RETRIES = DEFAULT_RETRY_DELAYS_SECONDS.length;
/** Dead-lettered deliveries in a row after which an endpoint is disabled. */
export const AUTO_DISABLE_AFTER_FAILURES = 20;
/** Per-attempt timeout of a webhook POST. */
export const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Delay before retry `retry` (1-based) with ±20 % jitter: the default schedule, or, when the endpoint
 * sets `backoff_seconds`, that base doubled per retry, capped at 6 h.
 */
export function retryDelayMs(retry: number, backoffSeconds: number | undefined, random: () => number = Math.random): number {
  const cap = DEFAULT_RETRY_DELAYS_SECONDS[DEFAULT_RETRY_DELAYS_SECONDS.length - 1]!;
  const base = backoffSeconds !== undefined
    ? Math.min(backoffSeconds * 2 ** (retry - 1), cap)
    : DEFAULT_RETRY_DELAYS_SECONDS[Math.min(retry, DEFAULT_RETRY_DELAYS_SECONDS.length) - 1]!;
  return Math.round(base * 1000 * (0.8 + 0.4 * random()));
}
