import type { Broker, Queue, Subscription } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, Tally } from '../helpers.js';
import type { ConformanceCase } from '../types.js';
import { busy, idsOf, numbered } from './common.js';
import {
  flagged,
  missingDetail,
  waitUntil,
  waitForAll,
  expectExactlyOnce,
  type Tracked,
  track,
  bounded,
  Publisher,
  connectMany,
  CONCURRENCY,
} from './volume-support.js';

const churn: ConformanceCase = {
  id: '12',
  title:
    'churn: subscribers opened and closed in batches while messages flow lose no message, and every duplicate is flagged as a redelivery',
  requires: ['durableSubscriptions'],
  run: async (ctx) => {
    const total = ctx.count(100, 5_000);
    const batches = ctx.count(2, 5);
    const publishers = ctx.count(3, 5);
    const q = ctx.queue('churn');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    /** Messages handled by each subscriber: the first (empty queue), the batches, the last. */
    const handled: number[] = [];
    /**
     * The batch subscriber's close, started by its own handler once `at` distinct messages were handled:
     * the subscriber goes away right then, with handlers in flight and messages still coming, however
     * fast the transport is.
     */
    let trigger: { readonly subscriber: number; readonly at: number; readonly close: () => Promise<void> } | undefined;
    let closing: Tracked | undefined;
    const subscribe = (broker: Broker): Promise<Subscription> => {
      const subscriber = handled.push(0) - 1;
      return broker.consumer().subscribe(
        q,
        async (m) => {
          await busy(1);
          tally.add(m.id, flagged(m));
          handled[subscriber] = (handled[subscriber] ?? 0) + 1;
          if (trigger?.subscriber === subscriber && tally.distinct >= trigger.at) {
            closing = track(trigger.close()); // not awaited: closing waits for this handler
            trigger = undefined;
          }
        },
        { concurrency: CONCURRENCY },
      );
    };

    // Subscribe once so that the queue exists, then leave it without consumers.
    const publisher = await ctx.connect();
    const first = await subscribe(publisher);
    await bounded(ctx, 'the first subscription to close', first.close());

    const sender = new Publisher(publisher, publishers);
    const publishing = track(sender.publish(q, messages));
    const progress = (): string =>
      `${missingDetail(tally, expected)}; ${sender.resolved} of ${total} publishes resolved` +
      (publishing.failed ? ' (publishing failed)' : '') +
      `; close ${closing === undefined ? 'not started' : closing.settled ? 'done' : 'pending'}`;
    for (let b = 0; b < batches; b++) {
      const target = Math.floor((total * (b + 1)) / (batches + 1));
      const broker = await ctx.connect();
      closing = undefined;
      const subscription = await subscribe(broker);
      // Alternate the two ways a subscriber goes away: its subscription, or its whole connection.
      const close = b % 2 === 0 ? () => subscription.close() : () => broker.close();
      trigger = { subscriber: handled.length - 1, at: target, close };
      await waitUntil(
        ctx,
        () => {
          const published = publishing.check(); // a failed publish fails the case here
          if (closing === undefined && published && tally.hasAll(expected)) {
            // An earlier batch left nothing for this one: close it from here.
            trigger = undefined;
            closing = track(close());
          }
          return closing?.check() ?? false;
        },
        `batch ${b + 1} of ${batches} to handle messages up to ${target} distinct, then ${b % 2 === 0 ? 'subscription' : 'broker'}.close()`,
        progress,
      );
    }

    await subscribe(await ctx.connect());
    await waitUntil(
      ctx,
      () => publishing.check() && tally.hasAll(expected),
      `the last subscriber to drain the remaining messages (all ${total})`,
      progress,
    );
    await observeFor(ctx.quietMs);
    expect(tally.missing(expected), 'messages lost').toEqual([]);
    expect(tally.unexpected(expected), 'messages that were never sent').toEqual([]);
    expect(tally.unflaggedDuplicates, 'duplicates without redelivered / attempt > 1').toBe(0);
    ctx.note(`${tally.duplicates} duplicate(s), all flagged; handled per batch: ${handled.slice(1).join('/')}`);
  },
};

const concurrentClose: ConformanceCase = {
  id: '13',
  title:
    'concurrent close: ten subscriptions closed concurrently stop receiving, and a new subscriber then gets every new message',
  run: async (ctx) => {
    const subscriptionCount = 10;
    const after = ctx.count(20, 50);
    const competingConsumers = ctx.capabilities.competingConsumers;
    if (!competingConsumers) {
      ctx.note('capabilities.competingConsumers is false: the ten subscriptions use ten queues');
    }
    const shared = ctx.queue('close');
    const queues = Array.from({ length: subscriptionCount }, (_, i) =>
      competingConsumers || i === 0 ? shared : ctx.queue(`close${i}`),
    );
    const brokers = await connectMany(ctx, 3);
    const counts = new Array<number>(subscriptionCount).fill(0);
    const before = new Tally();
    const subscriptions = await bounded(
      ctx,
      `${subscriptionCount} subscriptions created at once`,
      Promise.all(
        queues.map((q, i) =>
          (brokers[i % brokers.length] as Broker).consumer().subscribe(q, (m) => {
            counts[i] = (counts[i] ?? 0) + 1;
            before.add(m.id, flagged(m));
          }),
        ),
      ),
    );
    const publisher = new Publisher(await ctx.connect(), 5);
    const first = numbered(subscriptionCount);
    const firstIds = idsOf(first);
    await publisher.publishAll(ctx, (i) => queues[i] as Queue, first);
    await waitForAll(ctx, before, firstIds, `the first ${subscriptionCount} messages to be handled`);

    await bounded(
      ctx,
      `${subscriptionCount} concurrent subscription.close()`,
      Promise.all(subscriptions.map((subscription) => subscription.close())),
    );
    const countsAtClose = [...counts];

    const fresh = new Tally();
    await (brokers[0] as Broker).consumer().subscribe(shared, (m) => fresh.add(m.id, flagged(m)));
    const next = numbered(after);
    const nextIds = idsOf(next);
    await publisher.publishAll(ctx, shared, next);
    await waitForAll(ctx, fresh, nextIds, `the new subscriber to receive all ${after} new messages`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(before, firstIds, 'the ten subscriptions before closing');
    expectExactlyOnce(fresh, nextIds, 'the new subscriber');
    expect(counts, 'messages handled per subscription: none after it closed').toEqual(countsAtClose);
  },
};

/** Cases 12–13: subscribers opened and closed while messages flow, and concurrent closes. */
export const CHURN_CASES: readonly ConformanceCase[] = [churn, concurrentClose];
