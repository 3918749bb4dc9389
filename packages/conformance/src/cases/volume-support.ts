import type { Broker, Message, OutgoingMessage, Producer, Queue, Topic } from '@ferry/core';
import { expect } from 'vitest';
import { type Tally } from '../helpers.js';
import type { CaseContext } from '../types.js';

/** What the volume, ordering, fan-out and churn cases share: tallies with readable timeouts, tracked promises, a multi-producer publisher. */
/** Whether the broker or Ferry marked this delivery as a repeat. */
export function flagged(message: Message): boolean {
  return message.redelivered || message.attempt > 1;
}

/** How many ids of `expected` have not arrived. */
export function missingCount(tally: Tally, expected: ReadonlySet<string>): number {
  let missing = 0;
  for (const id of expected) if (tally.count(id) === 0) missing++;
  return missing;
}

/** What is still missing, for a timeout message. */
export function missingDetail(tally: Tally, expected: ReadonlySet<string>): string {
  const missing = missingCount(tally, expected);
  return `${missing} of ${expected.size} missing (e.g. ${tally.missing(expected, 5).join(', ')}); ${tally.deliveries} deliveries so far`;
}

/** `ctx.waitFor`, with `detail()` (computed when it times out) appended to the timeout message. */
export async function waitUntil(
  ctx: CaseContext,
  condition: () => boolean,
  what: string,
  detail: () => string,
  timeoutMs?: number,
): Promise<void> {
  try {
    await ctx.waitFor(condition, what, timeoutMs);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('Timed out')) {
      throw new Error(`${error.message}: ${detail()}`, { cause: error });
    }
    throw error;
  }
}

/** Waits until every id of `expected` arrived in `tally`, naming the missing ones on timeout. */
export function waitForAll(ctx: CaseContext, tally: Tally, expected: ReadonlySet<string>, what: string): Promise<void> {
  return waitUntil(
    ctx,
    () => tally.distinct >= expected.size && tally.hasAll(expected),
    what,
    () => missingDetail(tally, expected),
  );
}

/** Asserts that `tally` holds every id of `expected` exactly once and nothing else. */
export function expectExactlyOnce(tally: Tally, expected: ReadonlySet<string>, who: string): void {
  expect(tally.missing(expected), `${who}: messages missing`).toEqual([]);
  expect(tally.unexpected(expected), `${who}: messages that were not sent to it`).toEqual([]);
  expect(tally.duplicates, `${who}: duplicate deliveries`).toBe(0);
}

/** The outcome of a promise, pollable: `settled` once it resolved or rejected, `failed` when it rejected. */
export interface Tracked {
  readonly settled: boolean;
  readonly failed: boolean;
  /** True once resolved, false while pending; throws the error once rejected. */
  check(): boolean;
}

/** Tracks `promise` (and handles its rejection: read it through {@link Tracked.check}). */
export function track(promise: Promise<unknown>): Tracked {
  const state = { settled: false, failed: false, error: undefined as unknown };
  void promise.then(
    () => {
      state.settled = true;
    },
    (error: unknown) => {
      Object.assign(state, { settled: true, failed: true, error });
    },
  );
  return {
    get settled() {
      return state.settled;
    },
    get failed() {
      return state.failed;
    },
    check(): boolean {
      if (state.failed) throw state.error;
      return state.settled;
    },
  };
}

/** Awaits `promise`, failing with `what` (and `detail()`) when it does not settle within `ctx.waitMs`. */
export async function bounded<T>(
  ctx: CaseContext,
  what: string,
  promise: Promise<T>,
  detail = (): string => 'pending',
): Promise<T> {
  const state = track(promise);
  await waitUntil(ctx, () => state.settled, what, detail);
  return promise;
}

/** Where message `index` goes: one destination for all, or one per message. */
export type Target = Queue | Topic | ((index: number) => Queue | Topic);

/** Publishes through several producers of one broker at once, counting the publishes that resolved. */
export class Publisher {
  /** Publishes resolved so far. */
  resolved = 0;
  readonly #producers: Producer[];

  /** `parallel` producers of `broker`: that many publishes in flight at once. */
  constructor(broker: Broker, parallel: number) {
    this.#producers = Array.from({ length: parallel }, () => broker.producer());
  }

  /** Producer p sends messages p, p + parallel, ... each after the previous one resolved. */
  async publish(to: Target, messages: ReadonlyArray<OutgoingMessage>): Promise<void> {
    const stride = Math.min(this.#producers.length, messages.length);
    await Promise.all(
      this.#producers.slice(0, stride).map(async (producer, p) => {
        for (let i = p; i < messages.length; i += stride) {
          await producer.publish(typeof to === 'function' ? to(i) : to, messages[i] as OutgoingMessage);
          this.resolved++;
        }
      }),
    );
  }

  /** {@link publish}, bounded by `ctx.waitMs`; on timeout says how many publishes resolved. */
  async publishAll(ctx: CaseContext, to: Target, messages: ReadonlyArray<OutgoingMessage>): Promise<void> {
    const before = this.resolved;
    await bounded(
      ctx,
      `${messages.length} publishes by ${Math.min(this.#producers.length, messages.length)} publisher(s)`,
      this.publish(to, messages),
      () => `${this.resolved - before} of ${messages.length} resolved`,
    );
  }
}

/** `count` brokers from `ctx.connect()`. */
export function connectMany(ctx: CaseContext, count: number): Promise<Broker[]> {
  return Promise.all(Array.from({ length: count }, () => ctx.connect()));
}

/** Handlers in flight at once (and the broker prefetch) per subscription where the order does not matter. */
export const CONCURRENCY = 10;
