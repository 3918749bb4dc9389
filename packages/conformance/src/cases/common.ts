import type { OutgoingMessage, Producer, Queue, RetryOptions, Topic } from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { inParallel } from '../helpers.js';

/** The event type every conformance message carries. */
export const TEST_TYPE = 'ferry.conformance.test';

/** Retries quickly, so that retry cases take milliseconds, not the default backoff's seconds. */
export function fastRetry(maxAttempts: number): RetryOptions {
  return { maxAttempts, initialDelayMs: 5, maxDelayMs: 50, factor: 2, jitter: 0 };
}

/** `count` numbered test messages with unique ids (`<run>-<n>`); `data` is `{ n }`. */
export function numbered(
  count: number,
  extra: Partial<OutgoingMessage<{ n: number }>> = {},
): OutgoingMessage<{ n: number }>[] {
  const run = randomUUID().slice(0, 8);
  return Array.from({ length: count }, (_, n) => ({ type: TEST_TYPE, data: { n }, id: `${run}-${n}`, ...extra }));
}

/** The ids of `messages`, as a set. */
export function idsOf(messages: ReadonlyArray<OutgoingMessage>): Set<string> {
  return new Set(messages.map((m) => m.id!));
}

/** Publishes every message with `parallel` publishers at once; resolves once every publish resolved. */
export async function publishAll(
  producer: Producer,
  to: Queue | Topic,
  messages: ReadonlyArray<OutgoingMessage>,
  parallel = 1,
): Promise<void> {
  await inParallel(messages.length, parallel, (i) => producer.publish(to, messages[i]!));
}

/** Yields to the event loop `turns` times: a handler that takes a little while without a timer. */
export async function busy(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}
