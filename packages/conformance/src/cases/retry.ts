import type { CaseContext, ConformanceCase } from '../types.js';
import { type Message, type OutgoingMessage } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, Tally } from '../helpers.js';
import { fastRetry, idsOf, numbered, publishAll, TEST_TYPE } from './common.js';
import {
  SOURCE,
  TIME,
  run,
  bump,
  watchDeadLetters,
  describeDead,
  expectSameMessage,
  waitForAll,
} from './failure-support.js';

// 14a
async function retriedOnce(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('retry-once');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const seen: Message<unknown>[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      seen.push(m);
      if (seen.length === 1) throw new Error('fails on its first delivery only');
    },
    { retry: fastRetry(3) },
  );
  const sent: OutgoingMessage = {
    type: TEST_TYPE,
    id: `retry-once-${run()}`,
    subject: 'retry-once',
    key: 'k-14a',
    time: TIME,
    data: { n: 1, text: 'once', list: [1, 'two', null] },
    headers: { 'x-case': '14a', 'x-tenant': 'acme' },
  };
  await broker.producer().publish(q, sent);
  await ctx.waitFor(() => seen.length >= 2, 'the redelivery after the first failure');
  await observeFor(ctx.quietMs);
  expect(seen, 'deliveries: the failed one and its retry, no third').toHaveLength(2);
  const [first, second] = seen as [Message<unknown>, Message<unknown>];
  expect(first.attempt).toBe(1);
  expect(first.redelivered).toBe(false);
  expect(second.attempt).toBe(2);
  expect(second.redelivered).toBe(true);
  for (const m of seen) {
    expectSameMessage(m, sent);
    expect({ ...m.headers }).toEqual(sent.headers);
  }
  expect(describeDead(dead)).toEqual([]);
}

// 14b
async function injectedFailures(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('injected');
  const messages = numbered(ctx.count(50, 100));
  const ids = idsOf(messages);
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  let deliveries = 0;
  const failures = new Map<string, number>();
  const handledAttempt = new Map<string, number>();
  const handled = new Tally();
  await consumer.subscribe(
    q,
    (m) => {
      deliveries++;
      // Dapr's pattern: the first 2 deliveries fail, then every 5th, whatever message it is.
      if (deliveries <= 2 || deliveries % 5 === 0) {
        bump(failures, m.id);
        throw new Error(`injected failure on delivery ${deliveries}`);
      }
      handled.add(m.id, m.redelivered);
      handledAttempt.set(m.id, m.attempt);
    },
    { retry: fastRetry(10) },
  );
  await publishAll(broker.producer(), q, messages, 4);
  await waitForAll(ctx, handled, ids, `all ${ids.size} messages despite the injected failures`);
  await observeFor(ctx.quietMs);
  expect(describeDead(dead)).toEqual([]);
  expect(handled.unexpected(ids)).toEqual([]);
  expect(handled.duplicates).toBe(0);
  const injected = [...failures.values()].reduce((a, b) => a + b, 0);
  expect(injected).toBeGreaterThanOrEqual(2 + Math.floor(ids.size / 5));
  expect(deliveries).toBe(ids.size + injected);
  // Each failure is counted: a message that failed k times is handled at attempt k + 1.
  for (const id of ids) expect(handledAttempt.get(id), id).toBe((failures.get(id) ?? 0) + 1);
  ctx.note(
    `${injected} injected failures over ${deliveries} deliveries; ${failures.size} messages failed at least once`,
  );
}

// 15
async function continueAfterErrors(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('continue');
  const messages = numbered(ctx.count(20, 50));
  const ids = idsOf(messages);
  const failEach = ctx.count(10, 100);
  const publisher = await ctx.connect();
  const dead = await watchDeadLetters(publisher.consumer(), q);
  // Enough attempts that nothing reaches the dead letter while the subscribers fail.
  const retry = fastRetry(10_000);
  const failed = [0, 0, 0];
  for (let i = 0; i < failed.length; i++) {
    const broker = await ctx.connect();
    await broker.consumer().subscribe(
      q,
      () => {
        failed[i] = failed[i]! + 1;
        throw new Error(`subscriber ${i + 1} fails every delivery`);
      },
      { retry },
    );
    if (i === 0) await publishAll(publisher.producer(), q, messages, 4);
    await ctx.waitFor(
      () => failed[i]! >= failEach,
      i === 0
        ? `subscriber 1 to fail ${failEach} deliveries`
        : `subscriber ${i + 1} to fail ${failEach} deliveries (none coming: the retries pending when subscriber ${i} closed were lost)`,
    );
    // Closes with retries it scheduled still pending: they must not be lost.
    await broker.close();
  }
  const fresh = await ctx.connect();
  const handled = new Tally();
  await fresh
    .consumer()
    .subscribe(q, (m) => void handled.add(m.id, m.redelivered || m.attempt > 1), { retry, concurrency: 4 });
  await waitForAll(ctx, handled, ids, `every one of ${ids.size} messages at the fresh subscriber`);
  expect(handled.unexpected(ids)).toEqual([]);
  expect(describeDead(dead)).toEqual([]);
  ctx.note(
    `failed deliveries per subscriber: ${failed.join(', ')}; fresh subscriber: ${handled.deliveries} deliveries, ${handled.duplicates} duplicates`,
  );
}

/** A message with every attribute and headers, to check the dead letter keeps them. */

/** Cases 14–15: retries — redelivered with the next attempt, injected failures, retries that outlive their subscription. */
export const RETRY_CASES: readonly ConformanceCase[] = [
  {
    id: '14a',
    title:
      'retry: a handler that throws once gets the message again with attempt 2 and redelivered, same id, attributes, data and headers; then it is acked and not delivered a third time',
    run: retriedOnce,
  },
  {
    id: '14b',
    title:
      "retry: with Dapr's injected failures (the first 2 deliveries and every 5th fail) every message is eventually handled, once, at attempt = its failures + 1, and nothing is dead-lettered",
    run: injectedFailures,
  },
  {
    id: '15',
    title:
      'retry: after 3 subscribers in turn each failed many deliveries and closed with retries pending, a fresh subscriber gets every message (no retry is lost with the subscription that scheduled it)',
    requires: ['durableSubscriptions'],
    run: continueAfterErrors,
  },
];
