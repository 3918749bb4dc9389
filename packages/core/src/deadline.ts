import { setMaxListeners } from 'node:events';
import { ErrorCode, PublishError } from './errors.js';

/** Granularity of shared deadlines, ms: a timeout fires up to this much late. */
const RESOLUTION_MS = 50;

interface Bucket {
  readonly controller: AbortController;
  readonly timer: NodeJS.Timeout;
  /** The rejecters of the operations still running under this bucket. */
  readonly waiting: Set<(reason: unknown) => void>;
}

/** The reason a shared deadline rejects with; callers turn it into their own error. @internal */
export const DEADLINE_PASSED = Symbol('ferry.deadline');

/**
 * Shared timeouts for many concurrent operations with one fixed duration (a producer's
 * `publishTimeout`): operations that start within the same 50 ms share one timer and one
 * `AbortSignal`, instead of allocating them per publish (Node's `AbortController` alone cost 11 % of
 * the publish path). A bucket lives until its time passes, even when its operations all settled, so
 * that sequential publishes (one in flight at a time) reuse it too; its timer holds the process open
 * only while an operation is pending. Each operation leaves the bucket as soon as it settles: nothing
 * accumulates on a long-lived promise (a `Promise.race` against one would keep a reaction per
 * operation alive until the deadline). @internal
 */
export class Deadlines {
  readonly #buckets = new Map<number, Bucket>();

  /** @param expired makes the rejection of an operation whose deadline passed (default {@link DEADLINE_PASSED}). */
  constructor(
    readonly ms: number,
    private readonly expired: () => unknown = () => DEADLINE_PASSED,
  ) {}

  /** Runs `operation` with the deadline's signal; rejects with `expired()` when the deadline passes first. */
  run<T>(operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const key = Math.ceil((Date.now() + this.ms) / RESOLUTION_MS);
    const bucket = this.#buckets.get(key) ?? this.#open(key);
    return new Promise<T>((resolve, reject) => {
      if (bucket.waiting.size === 0) bucket.timer.ref();
      bucket.waiting.add(reject);
      const leave = (): void => {
        if (bucket.waiting.delete(reject) && bucket.waiting.size === 0) bucket.timer.unref();
      };
      let running: Promise<T>;
      try {
        running = operation(bucket.controller.signal);
      } catch (error) {
        leave();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the operation's own failure, unchanged
        reject(error);
        return;
      }
      running.then(
        (value) => {
          leave();
          resolve(value);
        },
        (error: unknown) => {
          leave();
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- unchanged, or the caller's expiry
          reject(error === DEADLINE_PASSED ? this.expired() : error);
        },
      );
    });
  }

  /** Drops the buckets nothing waits on any more (their timers would otherwise live until their deadline). */
  dispose(): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.waiting.size > 0) continue;
      clearTimeout(bucket.timer);
      this.#buckets.delete(key);
    }
  }

  #open(key: number): Bucket {
    const controller = new AbortController();
    // One signal is shared by every publish of its window: many listeners are expected, not a leak.
    setMaxListeners(0, controller.signal);
    const waiting = new Set<(reason: unknown) => void>();
    const timer = setTimeout(
      () => {
        this.#buckets.delete(key);
        if (waiting.size === 0) return; // nothing waits on it: no signal to abort
        const late = [...waiting];
        waiting.clear();
        for (const reject of late) reject(this.expired());
        controller.abort(DEADLINE_PASSED);
      },
      Math.max(0, key * RESOLUTION_MS - Date.now()),
    );
    const bucket: Bucket = { controller, timer, waiting };
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
