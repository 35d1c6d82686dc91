// Sign-in attempts per client address in a sliding window: guessing from one address is slowed before the account lockout.
import { fail } from '../errors.js';

export interface LoginThrottleOptions {
  /** Attempts allowed per address within the window (default 10). */
  maxAttempts?: number;
  /** Window length in milliseconds (default one minute). */
  windowMs?: number;
  /** Addresses remembered at most; the oldest are forgotten first (bounds memory under a spray from many addresses). */
  maxAddresses?: number;
  clock?: () => number;
}

export class LoginThrottle {
  private readonly attempts = new Map<string, number[]>();
  private readonly maxAttempts: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly clock: () => number;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.clock = options.clock ?? Date.now;
  }

  /** Counts one attempt from `address`; throws RATE_LIMITED (with retryAfterSeconds) past the limit. */
  take(address: string): void {
    const now = this.clock();
    const recent = (this.attempts.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.maxAttempts) {
      this.attempts.set(address, recent);
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000));
      throw fail('RATE_LIMITED', 'too many sign-in attempts from this address: wait and try again', { retryAfterSeconds });
    }
    recent.push(now);
    // Re-inserting keeps the map in least-recently-used order for the eviction below.
    this.attempts.delete(address);
    this.attempts.set(address, recent);
    while (this.attempts.size > this.maxAddresses) this.attempts.delete(this.attempts.keys().next().value!);
  }
}
