import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { LocalTier } from './local.js';
import {
  type Broker,
  type Codec,
  ClosedError,
  ConfigurationError,
  jsonCodec,
  type Logger,
  type Message,
  type Subscription,
  topic,
} from '@ferry/core';
import { Announcer } from './announcer.js';
import {
  type CacheOptions,
  type CacheStats,
  closeRedis,
  type Invalidation,
  NAMESPACE,
  positive,
  type SetOptions,
} from './options.js';
import { type Counter, Counters, type FlushReason } from './counters.js';
import { Store } from './store.js';

/**
 * A two-tier cache for one namespace: an in-process LRU (L1) in front of Redis (L2), kept consistent
 * across instances by invalidation events over a Ferry broker. Create it with {@link createCache}.
 *
 * Consistency rules:
 * - every write takes a per-key version from Redis with the write; invalidations carry keys and versions;
 * - an L1 entry is evicted only by a newer version, and a fill never installs a version older than the
 *   newest invalidation seen for the key, nor one read before a flush (epoch token): a load that raced
 *   with a write never puts the older value into L1;
 * - publish only after Redis acknowledged the write; a failed publish is retried, newest version per key;
 * - a sender whose sequence jumps, or a broker that disconnects, flushes L1; while disconnected, L1 is
 *   bypassed (reads go to Redis) until the subscription is back.
 */
export class Cache<T = unknown> {
  /** The namespace given to {@link createCache}. */
  readonly namespace: string;
  readonly #broker: Broker;
  readonly #redis: Redis;
  readonly #ownsRedis: boolean;
  readonly #store: Store;
  readonly #codec: Codec;
  readonly #l1: LocalTier;
  readonly #l1TtlMs: number;
  readonly #l2TtlMs: number;
  readonly #onStoreError: 'loader' | 'throw';
  readonly #logger: Logger | undefined;
  readonly #topic;
  #bypass: boolean;
  readonly #lastSeen = new LRUCache<string, number>({ max: 10_000 });
  /** Loads under way, with the epoch and the key's newest announced version when each began. */
  readonly #inFlight = new Map<string, { epoch: number; newest: number; load: Promise<T | undefined> }>();
  readonly #announcer: Announcer;
  #subscription: Subscription | undefined;
  #closed = false;
  readonly #counters: Counters;
  readonly #onDisconnected = (): void => {
    this.#bypass = true;
    this.#flush('disconnect');
  };
  readonly #onConnected = (): void => {
    // Resubscribed: what was published meanwhile may be lost, and L1 was flushed when the link went down.
    this.#flush('disconnect');
    this.#bypass = false;
  };

  #redisLost = false;
  readonly #onRedisClosed = (): void => {
    this.#redisLost = true;
  };
  /**
   * Redis is back after a lost connection: it may have restarted without its data, and then its version
   * counters start again at 1, below versions L1 still holds. Flush rather than trust them.
   */
  readonly #onRedisReady = (): void => {
    if (!this.#redisLost) return;
    this.#redisLost = false;
    this.#flush('redis');
  };

  /** @internal use {@link createCache} */
  constructor(options: CacheOptions, redis: Redis, ownsRedis: boolean) {
    if (!NAMESPACE.test(options.namespace)) {
      throw new ConfigurationError(
        `Invalid cache namespace ${JSON.stringify(options.namespace)}: use 1-100 letters, digits, '_' or '-'`,
      );
    }
    this.namespace = options.namespace;
    this.#broker = options.broker;
    this.#redis = redis;
    this.#ownsRedis = ownsRedis;
    this.#codec = options.codec ?? jsonCodec();
    this.#l2TtlMs = positive(options.l2TtlMs, 'l2TtlMs', 3_600_000);
    this.#l1TtlMs = Math.min(positive(options.l1?.ttlMs, 'l1.ttlMs', 60_000), this.#l2TtlMs);
    const maxEntries = positive(options.l1?.maxEntries, 'l1.maxEntries', 10_000);
    this.#l1 = new LocalTier(maxEntries, this.#l1TtlMs);
    // Version counters outlive every value and L1 entry, so a version never goes back for a holder.
    this.#store = new Store(redis, options.namespace, this.#l2TtlMs + this.#l1TtlMs + 86_400_000);
    this.#onStoreError = options.onStoreError ?? 'loader';
    this.#counters = new Counters(options.namespace, options.metrics);
    this.#logger = options.logger;
    this.#topic = topic(`ferry.cache.${options.namespace}`);
    this.#announcer = new Announcer(options.broker.producer(), this.#topic, {
      sent: () => this.#count('sent', 'cache.invalidation.sent'),
      failed: (keys, error) =>
        this.#logger?.warn(
          { namespace: this.namespace, keys, error: error.message },
          'cache invalidation not published: queued for a retry',
        ),
    });
    this.#bypass = true;
  }

  /** Subscribes to the namespace's invalidations (private: every instance gets every one). @internal */
  async start(): Promise<void> {
    this.#redis.on('close', this.#onRedisClosed);
    this.#redis.on('ready', this.#onRedisReady);
    this.#broker.on('disconnected', this.#onDisconnected);
    this.#broker.on('connected', this.#onConnected);
    this.#subscription = await this.#broker
      .consumer()
      .subscribe<Invalidation>(this.#topic, (message) => this.#receive(message), { concurrency: 1 });
    if (this.#broker.health().status === 'up') this.#bypass = false;
  }

  /**
   * L1, then L2, then `loader` (single-flight per key: concurrent calls share one load). A loaded value
   * is written to L2 only if nothing was written meanwhile, and to L1 only if no newer version was
   * announced. Without a loader, a miss is `undefined`.
   *
   * @throws FerryError `FERRY_CACHE_STORE` when Redis fails and there is no loader (or `onStoreError: 'throw'`).
   */
  get(key: string, loader?: (key: string) => Promise<T> | T): Promise<T | undefined> {
    if (this.#closed) return Promise.reject(new ClosedError(`Cache ${this.namespace}`));
    if (!this.#bypass) {
      const entry = this.#l1.get(key);
      if (entry !== undefined) {
        this.#count('l1Hits', 'cache.l1.hit');
        return Promise.resolve(entry.value as T);
      }
    }
    this.#count('l1Misses', 'cache.l1.miss');
    // Join a load only if nothing was invalidated since it began: its result may predate that write.
    const newest = this.#l1.newest(key);
    const running = this.#inFlight.get(key);
    if (running !== undefined && running.epoch === this.#l1.epoch && running.newest === newest) return running.load;
    const flight = {
      epoch: this.#l1.epoch,
      newest,
      load: this.#load(key, loader).finally(() => {
        if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
      }),
    };
    this.#inFlight.set(key, flight);
    return flight.load;
  }

  async #load(key: string, loader: ((key: string) => Promise<T> | T) | undefined): Promise<T | undefined> {
    const epoch = this.#l1.epoch;
    let stored;
    try {
      stored = await this.#store.read(key);
    } catch (error) {
      this.#count('l2Errors', 'cache.l2.error');
      this.#logger?.warn({ namespace: this.namespace, key, error: (error as Error).message }, 'cache L2 read failed');
      if (loader === undefined || this.#onStoreError === 'throw') throw error;
      // Redis is down: answer from the source, cache nothing (no version to guard it with).
      this.#count('loads', 'cache.load');
      return await loader(key);
    }
    if (stored.bytes !== undefined) {
      this.#count('l2Hits', 'cache.l2.hit');
      const value = this.#codec.decode(stored.bytes) as T;
      this.#fill(key, stored.version, value, epoch);
      return value;
    }
    this.#count('l2Misses', 'cache.l2.miss');
    if (loader === undefined) return undefined;
    this.#count('loads', 'cache.load');
    const value = await loader(key);
    if (value === undefined) return value;
    try {
      if (await this.#store.fill(key, stored.version, this.#codec.encode(value), this.#l2TtlMs)) {
        this.#fill(key, stored.version, value, epoch);
      }
    } catch (error) {
      this.#count('l2Errors', 'cache.l2.error');
      this.#logger?.warn({ namespace: this.namespace, key, error: (error as Error).message }, 'cache L2 fill failed');
    }
    return value;
  }

  /** Puts a version into L1 unless it is stale: a newer version was announced, or L1 was flushed since the read began. */
  #fill(key: string, version: number, value: unknown, epoch: number): void {
    if (!this.#bypass) this.#l1.fill(key, version, value, epoch);
  }

  /**
   * Writes `value` to L2 under a new version, then publishes the invalidation. Resolves once Redis has
   * it and the invalidation is published (or queued for a retry, when the publish failed: `stats()`).
   *
   * @throws FerryError `FERRY_CACHE_STORE` when Redis fails: nothing is published.
   */
  async set(key: string, value: T, options: SetOptions = {}): Promise<void> {
    this.#open();
    const epoch = this.#l1.epoch;
    const ttlMs = positive(options.ttlMs, 'ttlMs', this.#l2TtlMs);
    const version = await this.#store.write(key, this.#codec.encode(value), ttlMs, options.tags ?? []);
    this.#fill(key, version, value, epoch);
    await this.#announcer.announce([[key, version]]);
  }

  /** Deletes `key` from L2 and every instance's L1. @throws FerryError `FERRY_CACHE_STORE` */
  async delete(key: string): Promise<void> {
    await this.invalidate([key]);
  }

  /** Deletes `keys` from L2 and every instance's L1. @throws FerryError `FERRY_CACHE_STORE` */
  async invalidate(keys: readonly string[]): Promise<void> {
    this.#open();
    const versions = await this.#store.delete(keys);
    this.#apply(versions);
    await this.#announcer.announce(versions);
  }

  /** Deletes every key written with `tag`, from L2 and every instance's L1. @throws FerryError `FERRY_CACHE_STORE` */
  async invalidateTag(tag: string): Promise<void> {
    this.#open();
    const versions = await this.#store.deleteTag(tag);
    this.#apply(versions);
    await this.#announcer.announce(versions);
  }

  /** Deletes the whole namespace from L2 and every instance's L1. @throws FerryError `FERRY_CACHE_STORE` */
  async clear(): Promise<void> {
    this.#open();
    await this.#store.clear();
    this.#flush('clear');
    await this.#announcer.send({ c: true });
  }

  /** Counters, sizes and the propagation delay of received invalidations. */
  stats(): CacheStats {
    return this.#counters.snapshot({
      l1Size: this.#l1.size,
      pending: this.#announcer.pending,
      bypassing: this.#bypass,
    });
  }

  /**
   * Stops listening, tries once more to publish what is pending, and drops L1. Closes the Redis client
   * only if the cache created it (from a URL). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#broker.off('disconnected', this.#onDisconnected);
    this.#broker.off('connected', this.#onConnected);
    this.#redis.off('close', this.#onRedisClosed);
    this.#redis.off('ready', this.#onRedisReady);
    await this.#subscription?.close();
    await this.#announcer.close();
    this.#l1.flush();
    if (this.#ownsRedis) await closeRedis(this.#redis);
  }

  #open(): void {
    if (this.#closed) throw new ClosedError(`Cache ${this.namespace}`);
  }

  /** Evicts L1 entries older than the given versions and remembers the versions for later fills. */
  #apply(versions: ReadonlyArray<readonly [string, number]>): void {
    const evicted = this.#l1.apply(versions);
    if (evicted > 0) this.#counters.count('evicted', 'cache.invalidation.evicted', {}, evicted);
  }

  #flush(reason: FlushReason): void {
    this.#l1.flush();
    this.#counters.flushed(reason);
  }

  #receive(message: Message<Invalidation>): void {
    const event = message.data;
    if (typeof event !== 'object' || event === null || typeof event.s !== 'string' || typeof event.q !== 'number') {
      return; // not ours: nothing to evict
    }
    this.#count('received', 'cache.invalidation.received');
    if (typeof event.t === 'number') this.#counters.propagated(Math.max(0, Date.now() - event.t));
    if (event.s !== this.#announcer.id) {
      const last = this.#lastSeen.get(event.s);
      // A jump in a sender's sequence: something was missed. Flush rather than guess what.
      if (last !== undefined && event.q > last + 1) this.#flush('gap');
      if (last === undefined || event.q > last) this.#lastSeen.set(event.s, event.q);
    }
    if (event.c === true) {
      if (event.s !== this.#announcer.id) this.#flush('clear');
      return;
    }
    if (Array.isArray(event.k)) {
      this.#apply(
        event.k.filter(
          (pair): pair is [string, number] =>
            Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'number',
        ),
      );
    }
  }

  #count(counter: Counter, metric: string, labels: Record<string, string> = {}): void {
    this.#counters.count(counter, metric, labels);
  }
}

/**
 * Creates a cache for one namespace and subscribes it to the namespace's invalidations.
 *
 * @example
 * const users = await createCache<User>({ broker, redis: 'redis://127.0.0.1:6379', namespace: 'users' });
 * const user = await users.get('u-1', (id) => db.loadUser(id));
 */
export async function createCache<T = unknown>(options: CacheOptions): Promise<Cache<T>> {
  const given = options.redis;
  const ownsRedis = typeof given !== 'object';
  const redis =
    typeof given === 'object'
      ? given
      : new Redis(given ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const cache = new Cache<T>(options, redis, ownsRedis);
  try {
    await cache.start();
  } catch (error) {
    if (ownsRedis) redis.disconnect();
    throw error;
  }
  return cache;
}
