import { AppError } from '../errors.ts';
import type { Cache } from '../ports/cache.ts';
import type { Clock } from '../ports/clock.ts';

export interface Window {
  name: 'second' | 'minute' | 'hour';
  seconds: number;
  limit: number;
}

/** Per-key tiers of the contract (requests per second / minute / hour). */
export const RATE_TIERS: Record<string, [number, number, number]> = {
  free: [2, 30, 100],
  pro: [10, 200, 5_000],
  enterprise: [50, 1_000, 50_000],
  unlimited: [1_000, 60_000, 3_600_000],
  anonymous: [10, 200, 2_000],
  health: [5, 60, 600],
};

export interface RateDecision {
  limit: number;
  remaining: number;
  reset: number; // seconds until the tightest window resets
}

/**
 * Fixed windows per second, minute and hour, counted in the cache. Every window is incremented, and the
 * request is refused if any is over. When the cache is down the limiter fails open: losing the cache only
 * slows things down, it never rejects traffic.
 */
export class RateLimiter {
  constructor(
    private readonly cache: Cache,
    private readonly clock: Clock,
  ) {}

  async check(subject: string, tier: string): Promise<RateDecision | undefined> {
    const limits = RATE_TIERS[tier] ?? RATE_TIERS.free;
    const windows: Window[] = [
      { name: 'second', seconds: 1, limit: limits[0] },
      { name: 'minute', seconds: 60, limit: limits[1] },
      { name: 'hour', seconds: 3600, limit: limits[2] },
    ];
    const nowSec = Math.floor(this.clock.now().getTime() / 1000);
    const counts = await Promise.all(
      windows.map((w) => this.cache.incr(`rl:${subject}:${w.name}:${Math.floor(nowSec / w.seconds)}`, w.seconds + 1)),
    );
    if (counts.some((c) => c === undefined)) return undefined;
    let decision: RateDecision | undefined;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      const count = counts[i] as number;
      const reset = w.seconds - (nowSec % w.seconds);
      if (count > w.limit) {
        throw new AppError('RATE_LIMIT_EXCEEDED', 429, `Rate limit exceeded (per-${w.name}). Try again in ${reset} seconds.`, undefined, {
          'Retry-After': String(reset),
          'X-RateLimit-Limit': String(w.limit),
          'X-RateLimit-Remaining': '0',
          'X-RateLimit-Reset': String(reset),
        }, { retry_after: reset });
      }
      const remaining = w.limit - count;
      if (!decision || remaining < decision.remaining) decision = { limit: w.limit, remaining, reset };
    }
    return decision;
  }
}
