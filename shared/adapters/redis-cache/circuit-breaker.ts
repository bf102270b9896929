import type { Clock } from '../../ports/clock.ts';
import { systemClock } from '../../ports/clock.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** consecutive failures that open the circuit */
  failureThreshold?: number;
  /** how long the circuit stays open before one probe call is let through */
  coolDownMs?: number;
  clock?: Clock;
}

const defaults = { failureThreshold: 5, coolDownMs: 5_000 } as const;

/**
 * Consecutive-failure circuit breaker: closed → open after `failureThreshold` failures in a row;
 * open short-circuits every call until `coolDownMs` has passed, then lets exactly one probe
 * through (half-open); the probe's outcome closes or re-opens the circuit.
 *
 * Hand-written rather than opossum: opossum owns the call (its own timeouts, rolling percentage
 * windows, an EventEmitter per breaker) while the cache only needs these three states, and the
 * breaker must read time from the injectable `Clock` so tests drive the cool-down without sleeping.
 */
export class CircuitBreaker {
  readonly #failureThreshold: number;
  readonly #coolDownMs: number;
  readonly #clock: Clock;
  #state: BreakerState = 'closed';
  #consecutiveFailures = 0;
  #openedAt = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    this.#failureThreshold = Math.max(1, options.failureThreshold ?? defaults.failureThreshold);
    this.#coolDownMs = Math.max(0, options.coolDownMs ?? defaults.coolDownMs);
    this.#clock = options.clock ?? systemClock;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /**
   * Asks to make a call. `false` means short-circuit: do not touch the backing service.
   * A `true` while open turns the circuit half-open and makes this call the single probe.
   */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'half-open') return false;
    if (this.#clock.now().getTime() - this.#openedAt < this.#coolDownMs) return false;
    this.#state = 'half-open';
    return true;
  }

  recordSuccess(): void {
    this.#state = 'closed';
    this.#consecutiveFailures = 0;
  }

  recordFailure(): void {
    // a straggler that was let through before the circuit opened must not extend the cool-down
    if (this.#state === 'open') return;
    this.#consecutiveFailures += 1;
    if (this.#state === 'half-open' || this.#consecutiveFailures >= this.#failureThreshold) {
      this.#state = 'open';
      this.#openedAt = this.#clock.now().getTime();
    }
  }
}
