/**
 * `@ferry/invalidation`: a two-tier cache — an in-process LRU (L1) in front of Redis (L2) — kept
 * consistent across instances by versioned invalidation events over any Ferry broker.
 *
 * @packageDocumentation
 * @module @ferry/invalidation
 */
export { Cache, createCache } from './cache.js';
export { INVALIDATION_TYPE } from './options.js';
export type { CacheOptions, CacheStats, CacheMetrics, SetOptions } from './options.js';
export { RedisIdempotencyStore } from './idempotency.js';
