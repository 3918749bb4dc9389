import type { Redis } from 'ioredis';
import type { ClaimResult, IdempotencyStore } from '@ferry/core';
import { storeError } from './store.js';

const RELEASE = `if redis.call('GET', KEYS[1]) == 'processing' then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * An `IdempotencyStore` on Redis for core's `idempotency()` middleware, shared by every instance of a
 * consumer on any transport: a message id is claimed with `SET NX PX`, so one handler runs it; once
 * done it is remembered for the TTL, so duplicates (redeliveries, in-doubt resends) are acknowledged
 * without running the handler again.
 *
 * @example
 * consumer.subscribe(q, handler, { middleware: [idempotency({ store: new RedisIdempotencyStore(redis) })] });
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** @param prefix Key prefix, default `ferry:idem:`. */
  constructor(redis: Redis, prefix = 'ferry:idem:') {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async claim(key: string, ttlMs: number): Promise<ClaimResult> {
    const name = this.#prefix + key;
    try {
      if ((await this.#redis.set(name, 'processing', 'PX', ttlMs, 'NX')) === 'OK') return 'claimed';
      const state = await this.#redis.get(name);
      if (state === null) return this.claim(key, ttlMs); // expired in between
      return state === 'done' ? 'done' : 'processing';
    } catch (error) {
      throw storeError(`claim "${key}"`, error);
    }
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    try {
      await this.#redis.set(this.#prefix + key, 'done', 'PX', ttlMs);
    } catch (error) {
      throw storeError(`complete "${key}"`, error);
    }
  }

  async release(key: string): Promise<void> {
    try {
      await this.#redis.eval(RELEASE, 1, this.#prefix + key);
    } catch (error) {
      throw storeError(`release "${key}"`, error);
    }
  }
}
