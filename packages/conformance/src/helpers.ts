/**
 * Small test helpers the conformance cases use, for transport tests of their own: unique names, polling
 * waits instead of sleeps, deferred promises, expected rejections, bounded parallelism and a tally of
 * deliveries. Free of vitest, like `@ferry/conformance/proxy`.
 *
 * @module @ferry/conformance/helpers
 */
import { randomUUID } from 'node:crypto';

/** A unique name per run, e.g. `orders-1a2b3c4d`: tests never share broker state by accident. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Polls `condition` every few milliseconds until it holds; fails with a message naming `what` after
 * `timeoutMs` (a function is called at the timeout, so it can say what was still missing). The way to wait in a test: never a bare sleep standing in for a condition.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what: string | (() => string) = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * An observation window: waits `ms` so that something that must NOT happen has had the chance to.
 * Use it only to prove an absence (no leak, no extra copy), never to wait for something to happen.
 */
export function observeFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise with its resolve and reject functions, for handlers that must be held open. */
export interface Deferred<T> {
  /** Settles when `resolve` or `reject` is called. */
  readonly promise: Promise<T>;
  /** Fulfils `promise` with `value`. */
  readonly resolve: (value: T) => void;
  /** Rejects `promise` with `error`. */
  readonly reject: (error: unknown) => void;
}

/** Creates a {@link Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The error a promise rejects with; throws when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Runs `task(i)` for i in [0, count) with at most `parallel` running at once. */
export async function inParallel(
  count: number,
  parallel: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

/** Counts received ids: duplicates, and the ones missing from an expected set. */
export class Tally {
  readonly #counts = new Map<string, number>();
  #deliveries = 0;
  #unflaggedDuplicates = 0;

  /** Records one delivery; `flagged` says whether the broker or Ferry marked it as a redelivery. */
  add(id: string, flagged = false): void {
    const seen = this.#counts.get(id) ?? 0;
    if (seen > 0 && !flagged) this.#unflaggedDuplicates++;
    this.#counts.set(id, seen + 1);
    this.#deliveries++;
  }

  /** Distinct ids received. */
  get distinct(): number {
    return this.#counts.size;
  }

  /** Deliveries in all, duplicates included. */
  get deliveries(): number {
    return this.#deliveries;
  }

  /** Deliveries beyond the first of each id. */
  get duplicates(): number {
    return this.#deliveries - this.#counts.size;
  }

  /** Duplicates that carried neither the redelivered flag nor an attempt above 1. */
  get unflaggedDuplicates(): number {
    return this.#unflaggedDuplicates;
  }

  /** How many times `id` arrived. */
  count(id: string): number {
    return this.#counts.get(id) ?? 0;
  }

  /** True when every id of `expected` arrived at least once. */
  hasAll(expected: Iterable<string>): boolean {
    for (const id of expected) if (!this.#counts.has(id)) return false;
    return true;
  }

  /** The ids of `expected` not received yet (at most `limit`, for error messages). */
  missing(expected: Iterable<string>, limit = 10): string[] {
    const out: string[] = [];
    for (const id of expected) {
      if (!this.#counts.has(id)) out.push(id);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Ids received that are not in `expected`. */
  unexpected(expected: ReadonlySet<string>): string[] {
    return [...this.#counts.keys()].filter((id) => !expected.has(id));
  }
}
