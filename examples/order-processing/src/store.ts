import { Redis } from 'ioredis';
import { MemoryIdempotencyStore, type IdempotencyStore } from '@ferry/core';
import { RedisIdempotencyStore } from '@ferry/invalidation';

/** The Redis URL when none is given: `REDIS_URL`, else the local default. */
export function defaultRedisUrl(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['REDIS_URL'];
  return fromEnv === undefined || fromEnv === '' ? 'redis://127.0.0.1:6379' : fromEnv;
}

/** Options of {@link openIdempotencyStore}. */
export interface StoreOptions {
  /** `'auto'` (default): Redis when it answers within `probeTimeoutMs`, else in-process. */
  readonly redis?: 'auto' | 'off';
  /** Default {@link defaultRedisUrl}. */
  readonly redisUrl?: string;
  /** Prefix of the Redis keys, e.g. `order-processing:shop:idem:`. */
  readonly keyPrefix: string;
  /** How long the Redis probe may take, ms. Default 1000. */
  readonly probeTimeoutMs?: number;
}

/** An idempotency store, what it is, and how to let it go. */
export interface StoreHandle {
  readonly store: IdempotencyStore;
  readonly kind: 'redis' | 'memory';
  /** One line for people: which store, and why. Never contains credentials. */
  readonly description: string;
  close(): Promise<void>;
}

/** `host:port` of a Redis URL, without credentials. */
function where(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return '(unparsable REDIS_URL)';
  }
}

/**
 * The store the services share: Redis (`RedisIdempotencyStore` from `@ferry/invalidation`) when it
 * answers, so instances in different processes agree on what was handled; otherwise core's
 * `MemoryIdempotencyStore`, which only instances in this process share.
 */
export async function openIdempotencyStore(options: StoreOptions): Promise<StoreHandle> {
  const url = options.redisUrl ?? defaultRedisUrl();
  if (options.redis === 'off') {
    return memoryStore('in-process (MemoryIdempotencyStore): Redis turned off');
  }
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.probeTimeoutMs ?? 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined); // the failed probe is reported below, in one line
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    probe.disconnect();
    const reason = error instanceof Error ? error.message : String(error);
    return memoryStore(`in-process (MemoryIdempotencyStore): no Redis at ${where(url)} (${reason})`);
  }
  await probe.quit().catch(() => undefined);
  // The client the store uses reconnects by itself; a command fails fast while Redis is away, and the
  // delivery is retried with backoff.
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  return {
    store: new RedisIdempotencyStore(redis, options.keyPrefix),
    kind: 'redis',
    description: `Redis at ${where(url)} (RedisIdempotencyStore, keys ${options.keyPrefix}*)`,
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

function memoryStore(description: string): StoreHandle {
  return { store: new MemoryIdempotencyStore(), kind: 'memory', description, close: () => Promise.resolve() };
}
