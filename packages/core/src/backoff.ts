import { ConfigurationError } from './errors.js';

/** Options of {@link ExponentialBackoff}. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 100. */
  readonly initialDelayMs?: number;
  /** Upper bound of any delay, ms. Default 30000. */
  readonly maxDelayMs?: number;
  /** Growth per attempt, >= 1. Default 2. */
  readonly factor?: number;
  /** Random spread as a fraction of the delay, 0 to 1 (0.2 = ±20 %). Default 0.2. */
  readonly jitter?: number;
}

/** A delay strategy shared by retries and reconnects. */
export interface Backoff {
  /** Delay in ms before retry number `retry` (1 = the first retry). */
  delay(retry: number): number;
}

/**
 * Exponential backoff with jitter and a cap: `min(max, initial × factor^(retry-1)) × (1 ± jitter)`,
 * never above `maxDelayMs`.
 *
 * @throws ConfigurationError when an option is not finite or out of range.
 */
export class ExponentialBackoff implements Backoff {
  /** The first delay, ms. */
  readonly initialDelayMs: number;
  /** The cap, ms. */
  readonly maxDelayMs: number;
  /** Growth per attempt. */
  readonly factor: number;
  /** Spread, as a fraction of the delay (0.2 = ±20 %). */
  readonly jitter: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialDelayMs = nonNegative(options.initialDelayMs ?? 100, 'initialDelayMs');
    this.maxDelayMs = nonNegative(options.maxDelayMs ?? 30_000, 'maxDelayMs');
    this.factor = inRange(options.factor ?? 2, 'factor', 1, Number.MAX_VALUE);
    this.jitter = inRange(options.jitter ?? 0.2, 'jitter', 0, 1);
    this.#random = random;
  }

  delay(retry: number): number {
    const exponent = Number.isNaN(retry) ? 0 : Math.min(1000, Math.max(0, Math.floor(retry) - 1));
    // Once factor^exponent overflows to Infinity, 0 × Infinity is NaN: a zero initial delay stays zero.
    const grown = this.initialDelayMs === 0 ? 0 : this.initialDelayMs * this.factor ** exponent;
    const base = Math.min(this.maxDelayMs, grown);
    const spread = base * this.jitter * (this.#random() * 2 - 1);
    return Math.round(Math.min(this.maxDelayMs, Math.max(0, base + spread)));
  }
}

function nonNegative(value: number, name: string): number {
  return inRange(value, name, 0, Number.MAX_VALUE);
}

function inRange(value: number, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Number.MAX_VALUE ? `>= ${min}` : `between ${min} and ${max}`;
    throw new ConfigurationError(`${name} must be a finite number ${range}, got ${String(value)}`);
  }
  return value;
}

const DELAY_LADDER: readonly number[] = (() => {
  const steps: number[] = [];
  for (let scale = 10; scale <= 100_000_000; scale *= 10)
    for (const m of [1, 1.5, 2, 3, 4, 5, 7]) steps.push(m * scale);
  return steps;
})();

/**
 * The step a broker-side delay uses for `delayMs`: the smallest of 1-1.5-2-3-4-5-7 ×10ⁿ ms (from 10 ms
 * to 700,000,000 ms) at or above it — at most 1.5× longer. Transports that delay retries in per-delay
 * queues (RabbitMQ TTL queues) round to these steps so that few queues serve every delay.
 */
export function delayBucket(delayMs: number): number {
  return DELAY_LADDER.find((step) => step >= delayMs) ?? DELAY_LADDER[DELAY_LADDER.length - 1]!;
}
