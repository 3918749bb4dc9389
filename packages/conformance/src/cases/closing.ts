import { type Message } from '@ferry/core';
import { expect } from 'vitest';
import { deferred, type Deferred, observeFor, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { idsOf, numbered, publishAll, TEST_TYPE } from './common.js';
import { whenUp } from './lifecycle-support.js';

async function connectionDiesMidHandler(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('crash');
  const a = await ctx.isolated();
  const b = await ctx.connect();
  const held = deferred();
  const byA: Message[] = [];
  const byB: Message[] = [];
  await a.broker.consumer().subscribe(q, async (m) => {
    byA.push(m);
    await held.promise;
  });
  const producer = b.producer();
  await producer.publish(q, { type: TEST_TYPE, id: `crash-${q.name}`, data: 'held' });
  await ctx.waitFor(() => byA.length === 1, 'consumer A to start on the message');
  await b.consumer().subscribe(q, (m) => void byB.push(m));
  try {
    await a.disconnect();
    await ctx.waitFor(() => byB.some((m) => m.id === byA[0]!.id), 'the unacked message to reach consumer B');
    const redelivery = byB.find((m) => m.id === byA[0]!.id)!;
    expect(redelivery.data).toBe('held');
    if (ctx.capabilities.redeliveryFlag) expect(redelivery.redelivered).toBe(true);
    if (ctx.capabilities.deliveryCount) expect(redelivery.attempt).toBe(2);
  } finally {
    // A's handler finishes late: its acknowledgement belongs to a dead connection and must not touch anything else.
    held.resolve();
  }
  await a.reconnect();
  await whenUp(ctx, a.broker, 'consumer A');
  const after = numbered(ctx.count(20, 100));
  await publishAll(producer, q, after, 5);
  await ctx.waitFor(
    () => after.every((m) => byA.some((x) => x.id === m.id) || byB.some((x) => x.id === m.id)),
    'every later message on either consumer',
  );
  const later = [...byA, ...byB].filter((m) => idsOf(after).has(m.id));
  expect(later, 'each later message exactly once').toHaveLength(after.length);
}

async function gracefulClose(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('graceful');
  const broker = await ctx.connect();
  const holds: Deferred<void>[] = [];
  const started: string[] = [];
  const finished: string[] = [];
  const consumer = broker.consumer();
  await consumer.subscribe(
    q,
    async (m) => {
      started.push(m.id);
      const hold = deferred();
      holds.push(hold);
      await hold.promise;
      finished.push(m.id);
    },
    { concurrency: 2 },
  );
  const messages = numbered(10);
  const publisher = await ctx.connect();
  await publishAll(publisher.producer(), q, messages);
  await ctx.waitFor(() => started.length === 2, 'two handlers in flight');
  let closed = false;
  const closing = consumer.close().then(() => (closed = true));
  await observeFor(ctx.quietMs);
  expect(closed, 'close() must wait for the in-flight handlers').toBe(false);
  expect(started).toHaveLength(2);
  for (const hold of holds) hold.resolve();
  await closing;
  expect(finished.sort()).toEqual([...started].sort());
  // The two handled ones were acked; the other eight wait for the next consumer.
  const next = await ctx.connect();
  const tally = new Tally();
  await next.consumer().subscribe(q, (m) => tally.add(m.id));
  const rest = new Set([...idsOf(messages)].filter((id) => !started.includes(id)));
  await ctx.waitFor(() => tally.hasAll(rest), 'the undelivered messages for the next consumer');
  await observeFor(ctx.quietMs);
  expect(tally.unexpected(rest)).toEqual([]);
  expect(tally.duplicates).toBe(0);
}

async function subscriptionClose(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const consumer = broker.consumer();
  const closedQueue = ctx.queue('closed-sub');
  const liveQueue = ctx.queue('live-sub');
  const onClosed: string[] = [];
  const onLive = new Tally();
  const closedSub = await consumer.subscribe(closedQueue, (m) => void onClosed.push(m.id));
  await consumer.subscribe(liveQueue, (m) => onLive.add(m.id));
  await closedSub.close();
  await closedSub.close();
  const producer = broker.producer();
  const toClosed = numbered(5);
  const toLive = numbered(ctx.count(20, 100));
  await publishAll(producer, closedQueue, toClosed);
  await publishAll(producer, liveQueue, toLive);
  await ctx.waitFor(() => onLive.hasAll(idsOf(toLive)), 'the other subscription to go on');
  await observeFor(ctx.quietMs);
  expect(onClosed).toEqual([]);
  if (ctx.capabilities.durableSubscriptions) {
    const later = new Tally();
    await consumer.subscribe(closedQueue, (m) => later.add(m.id));
    await ctx.waitFor(() => later.hasAll(idsOf(toClosed)), 'the closed subscription’s messages for a later one');
  }
}

/** Cases 18 and 20: a consumer that dies mid-handler, graceful close, closing one subscription. */
export const CLOSING_CASES: readonly ConformanceCase[] = [
  {
    id: '18',
    title:
      'a consumer whose connection dies mid-handler: its unacked message goes to another consumer; the late ack harms nothing',
    requires: ['competingConsumers', 'failoverRedelivery'],
    hooks: ['isolated'],
    run: connectionDiesMidHandler,
  },
  {
    id: '20a',
    title:
      'graceful close: in-flight handlers finish and are acked, nothing more is delivered, undelivered messages stay for the next consumer',
    requires: ['durableSubscriptions'],
    run: gracefulClose,
  },
  {
    id: '20b',
    title: "a subscription's close() stops deliveries to it while other subscriptions on the same consumer go on",
    run: subscriptionClose,
  },
];
