import { ConfigurationError } from './errors.js';

/** Options of {@link ExponentialBackoff}. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 100. */
  readonly initialDelayMs?: number;
  /** Upper bound of any delay, ms. Default 30000. */
  readonly maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  readonly factor?: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %). Default 0.2. */
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
 */
export class ExponentialBackoff implements Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  readonly jitter: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialDelayMs = nonNegative(options.initialDelayMs ?? 100, 'initialDelayMs');
    this.maxDelayMs = nonNegative(options.maxDelayMs ?? 30_000, 'maxDelayMs');
    this.factor = Math.max(1, options.factor ?? 2);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
    this.#random = random;
  }

  delay(retry: number): number {
    const exponent = Math.max(0, Math.floor(retry) - 1);
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * this.factor ** Math.min(exponent, 1000));
    const spread = base * this.jitter * (this.#random() * 2 - 1);
    return Math.round(Math.min(this.maxDelayMs, Math.max(0, base + spread)));
  }
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new ConfigurationError(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}
