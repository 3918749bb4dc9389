import { FerryError } from '@ferry/core';

/** How long any single wait may take before the demo fails, ms. Generous, so a real broker fits too. */
export const WAIT_TIMEOUT_MS = 10_000;

/** A failure of the demo itself: an expectation that did not hold. */
export class DemoError extends Error {
  override name = 'DemoError';
}

/**
 * Collects what handlers observe and lets the narrator wait until enough of it arrived: no fixed
 * sleeps, and a bounded wait that fails loudly with what was missing.
 */
export class Collector<T> {
  readonly #items: T[] = [];
  readonly #waiters = new Set<{ count: number; resolve: () => void }>();

  /** What was collected so far, in arrival order. */
  get items(): readonly T[] {
    return this.#items;
  }

  push(item: T): void {
    this.#items.push(item);
    for (const waiter of this.#waiters) {
      if (this.#items.length >= waiter.count) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Resolves once `count` items arrived; rejects with a {@link DemoError} after `timeoutMs`. */
  async waitFor(count: number, what: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<readonly T[]> {
    if (this.#items.length >= count) return this.#items;
    let timer: NodeJS.Timeout | undefined;
    let waiter: { count: number; resolve: () => void } | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = { count, resolve };
        this.#waiters.add(waiter);
        timer = setTimeout(() => {
          reject(
            new DemoError(`timed out after ${timeoutMs} ms waiting for ${what}: got ${this.#items.length} of ${count}`),
          );
        }, timeoutMs);
      });
    } finally {
      clearTimeout(timer);
      if (waiter !== undefined) this.#waiters.delete(waiter);
    }
    return this.#items;
  }
}

/** Throws a {@link DemoError} when `condition` is false. */
export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new DemoError(message);
}

/**
 * A failure inside an example a chapter runs, as a {@link DemoError} naming the example (the demo prints
 * its message without a stack). A `FerryError` passes through: the demo prints its code.
 */
export function failureOf(example: string, error: unknown): Error {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DemoError(`${example}: ${message}`, { cause: error });
}
