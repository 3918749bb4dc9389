import type { Redis } from 'ioredis';
import { type Broker, type Codec, ConfigurationError, type Logger } from '@ferry/core';

/** Options of {@link createCache}. */
export interface CacheOptions {
  /** The broker the invalidations travel on (any transport). Not closed by the cache. */
  readonly broker: Broker;
  /** An ioredis client (not closed by the cache) or a Redis URL (the cache owns that client). Default `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  readonly redis?: Redis | string;
  /** Separates caches: Redis keys `ferry:cache:<namespace>:…` and the topic `ferry.cache.<namespace>`. Letters, digits, `_`, `-`. */
  readonly namespace: string;
  /** L1 (in-process LRU): most entries (default 10000) and their TTL (default 60000 ms). */
  readonly l1?: {
    /** Most entries L1 holds; the least recently used go first. Default 10000. */
    readonly maxEntries?: number;
    /** How long an L1 entry lives, ms: the last backstop against a missed invalidation. Default 60000. */
    readonly ttlMs?: number;
  };
  /** Default TTL of L2 (Redis) entries, ms. Default 3600000 (one hour). */
  readonly l2TtlMs?: number;
  /** Encodes values for Redis. Default: core's JSON codec (hostile-input safe). */
  readonly codec?: Codec;
  /** What `get` does when Redis fails: `loader` (default) answers from the loader without caching; `throw` rejects with `FERRY_CACHE_STORE`. */
  readonly onStoreError?: 'loader' | 'throw';
  /** Optional hook for a metrics library: counters and observed durations, named `cache.*`. */
  readonly metrics?: CacheMetrics;
  /** Where the cache logs (default: the broker's logger is not reachable, so silent). */
  readonly logger?: Logger;
}

/** A metrics library adapter (Prometheus, OpenTelemetry, StatsD…). */
export interface CacheMetrics {
  /** Adds 1 to the counter `name` (e.g. `cache.l1.hit`, `cache.flush`), labelled with `namespace` (and `reason`, for flushes). */
  increment(name: string, labels: Readonly<Record<string, string>>): void;
  /** Records one observation of `name` (`cache.invalidation.propagation_ms`), with the `namespace` label. */
  observe(name: string, value: number, labels: Readonly<Record<string, string>>): void;
}

/** Options of {@link Cache.set}. */
export interface SetOptions {
  /** TTL of the L2 entry, ms (default `l2TtlMs`); L1 keeps it at most its own TTL. */
  readonly ttlMs?: number;
  /** Tags: `invalidateTag(tag)` evicts every key carrying one, on every instance. */
  readonly tags?: readonly string[];
}

/** What `stats()` reports. */
export interface CacheStats {
  /** The in-process tier. */
  readonly l1: {
    /** Reads answered from L1. */
    readonly hits: number;
    /** Reads L1 could not answer (absent, expired, or bypassed). */
    readonly misses: number;
    /** Entries in L1 now. */
    readonly size: number;
  };
  /** The Redis tier. */
  readonly l2: {
    /** Reads answered from Redis. */
    readonly hits: number;
    /** Reads Redis could not answer. */
    readonly misses: number;
    /** Redis commands that failed. */
    readonly errors: number;
  };
  /** Loader calls (single-flight: one per key at a time). */
  readonly loads: number;
  /** Invalidation events. */
  readonly invalidations: {
    /** Published by this instance. */
    readonly sent: number;
    /** Received by this instance (its own echoes included). */
    readonly received: number;
    /** L1 entries evicted by received invalidations. */
    readonly evicted: number;
    /** Invalidations waiting to be published again (their publish failed). */
    readonly pending: number;
  };
  /** Times L1 was flushed: the broker disconnected, a sender's sequence jumped, `clear()`, or Redis came back after a lost connection. */
  readonly flushes: {
    /** The broker disconnected. */
    readonly disconnect: number;
    /** A sender's sequence number jumped: invalidations were missed. */
    readonly gap: number;
    /** `clear()` was called (here or on another instance). */
    readonly clear: number;
    /** Redis came back after a lost connection. */
    readonly redis: number;
  };
  /** True while L1 is bypassed (the broker is disconnected or not yet subscribed). */
  readonly bypassing: boolean;
  /** Delay from a sender's publish to this instance's receipt, ms (same clock across hosts assumed). */
  readonly propagationMs: {
    /** Invalidations measured. */
    readonly count: number;
    /** Median, ms. */
    readonly p50: number;
    /** 99th percentile, ms. */
    readonly p99: number;
    /** Largest, ms. */
    readonly max: number;
  };
}

/** The event on the invalidation topic: keys and versions, never values. */
export interface Invalidation {
  /** Sender (a cache instance). */
  readonly s: string;
  /** The sender's sequence number, 1, 2, 3…: a jump means something was missed. */
  readonly q: number;
  /** Sent at (sender's `Date.now()`). */
  readonly t: number;
  /** `[key, version]` pairs. */
  readonly k?: ReadonlyArray<readonly [string, number]>;
  /** The whole namespace was cleared. */
  readonly c?: true;
}

/** The message type on the invalidation topic. */
export const INVALIDATION_TYPE = 'ferry.cache.invalidated';

/** Valid namespaces. */
export const NAMESPACE = /^[A-Za-z0-9_-]{1,100}$/;

/** A positive integer option, or its default. @throws ConfigurationError */
export function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigurationError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Closes an ioredis client: QUIT when connected (pending replies arrive first), else a plain disconnect
 * (ioredis 6's `quit()` never settles while it is reconnecting with a command waiting).
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
    return;
  }
  client.disconnect();
}
