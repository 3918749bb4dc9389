import { setMaxListeners } from 'node:events';
import { ErrorCode, PublishError } from './errors.js';

/** Granularity of shared deadlines, ms: a timeout fires up to this much late. */
const RESOLUTION_MS = 50;

interface Bucket {
  readonly controller: AbortController;
  readonly expired: Promise<never>;
  readonly timer: NodeJS.Timeout;
  pending: number;
}

/** The reason a shared deadline rejects with; callers turn it into their own error. @internal */
export const DEADLINE_PASSED = Symbol('ferry.deadline');

/**
 * Shared timeouts for many concurrent operations with one fixed duration (a producer's
 * `publishTimeout`): operations that start within the same 50 ms share one timer, one
 * `AbortSignal` and one rejecting promise, instead of allocating them per publish (Node's
 * `AbortController` alone cost 11 % of the publish path). A bucket's timer is cleared as soon as its
 * last operation settles. @internal
 */
export class Deadlines {
  readonly #buckets = new Map<number, Bucket>();

  /** @param expired makes the rejection of an operation whose deadline passed (default {@link DEADLINE_PASSED}). */
  constructor(
    readonly ms: number,
    private readonly expired: () => unknown = () => DEADLINE_PASSED,
  ) {}

  /** Runs `operation` with the deadline's signal; rejects with {@link DEADLINE_PASSED} when it passes first. */
  async run<T>(operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const key = Math.ceil((Date.now() + this.ms) / RESOLUTION_MS);
    const bucket = this.#buckets.get(key) ?? this.#open(key);
    bucket.pending++;
    try {
      const running = operation(bucket.controller.signal);
      running.catch(() => undefined); // after the deadline its late rejection is expected
      return await Promise.race([running, bucket.expired]);
    } catch (error) {
      throw error === DEADLINE_PASSED ? this.expired() : error;
    } finally {
      if (--bucket.pending === 0 && this.#buckets.get(key) === bucket) {
        clearTimeout(bucket.timer);
        this.#buckets.delete(key);
      }
    }
  }

  #open(key: number): Bucket {
    const controller = new AbortController();
    // One signal is shared by every publish of its window: many listeners are expected, not a leak.
    setMaxListeners(0, controller.signal);
    let reject: (reason: unknown) => void = () => undefined;
    const expired = new Promise<never>((_, r) => (reject = r));
    expired.catch(() => undefined);
    const timer = setTimeout(
      () => {
        this.#buckets.delete(key);
        controller.abort(DEADLINE_PASSED);
        reject(DEADLINE_PASSED);
      },
      Math.max(0, key * RESOLUTION_MS - Date.now()),
    );
    const bucket: Bucket = { controller, expired, timer, pending: 0 };
    this.#buckets.set(key, bucket);
    return bucket;
  }
}

/** Deadlines for publishes to the broker: past `ms` they reject with `FERRY_PUBLISH_TIMEOUT`. @internal */
export function publishDeadlines(ms: number): Deadlines {
  return new Deadlines(
    ms,
    () =>
      new PublishError(
        ErrorCode.PUBLISH_TIMEOUT,
        `The broker did not confirm the message within ${ms} ms (publishTimeout): it may be unreachable or applying back-pressure; the message may or may not have been taken, so publish again with the same id`,
      ),
  );
}
