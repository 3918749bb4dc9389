import type { CacheMetrics, CacheStats } from './options.js';
import { Quantiles } from './quantiles.js';

/** The counters a cache keeps (and forwards to a metrics hook). */
export type Counter =
  | 'l1Hits'
  | 'l1Misses'
  | 'l2Hits'
  | 'l2Misses'
  | 'l2Errors'
  | 'loads'
  | 'sent'
  | 'received'
  | 'evicted'
  | 'flushDisconnect'
  | 'flushGap'
  | 'flushClear'
  | 'flushRedis';

/** Why L1 was flushed. */
export type FlushReason = 'disconnect' | 'gap' | 'clear' | 'redis';

const FLUSH_COUNTERS: Readonly<Record<FlushReason, Counter>> = {
  disconnect: 'flushDisconnect',
  gap: 'flushGap',
  clear: 'flushClear',
  redis: 'flushRedis',
};

/** A cache's counters and propagation delays, mirrored to an optional metrics hook. */
export class Counters {
  readonly #namespace: string;
  readonly #metrics: CacheMetrics | undefined;
  readonly #delays = new Quantiles(4_096);
  readonly #counts: Record<Counter, number> = {
    l1Hits: 0,
    l1Misses: 0,
    l2Hits: 0,
    l2Misses: 0,
    l2Errors: 0,
    loads: 0,
    sent: 0,
    received: 0,
    evicted: 0,
    flushDisconnect: 0,
    flushGap: 0,
    flushClear: 0,
    flushRedis: 0,
  };

  constructor(namespace: string, metrics: CacheMetrics | undefined) {
    this.#namespace = namespace;
    this.#metrics = metrics;
  }

  count(counter: Counter, metric: string, labels: Record<string, string> = {}, by = 1): void {
    this.#counts[counter] += by;
    for (let i = 0; i < by; i++) this.#metrics?.increment(metric, { namespace: this.#namespace, ...labels });
  }

  flushed(reason: FlushReason): void {
    this.count(FLUSH_COUNTERS[reason], 'cache.flush', { reason });
  }

  /** A received invalidation's delay from its sender's publish, ms. */
  propagated(delayMs: number): void {
    this.#delays.add(delayMs);
    this.#metrics?.observe('cache.invalidation.propagation_ms', delayMs, { namespace: this.#namespace });
  }

  snapshot(state: { l1Size: number; pending: number; bypassing: boolean }): CacheStats {
    const c = this.#counts;
    return {
      l1: { hits: c.l1Hits, misses: c.l1Misses, size: state.l1Size },
      l2: { hits: c.l2Hits, misses: c.l2Misses, errors: c.l2Errors },
      loads: c.loads,
      invalidations: { sent: c.sent, received: c.received, evicted: c.evicted, pending: state.pending },
      flushes: { disconnect: c.flushDisconnect, gap: c.flushGap, clear: c.flushClear, redis: c.flushRedis },
      bypassing: state.bypassing,
      propagationMs: this.#delays.summary(),
    };
  }
}
