import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, Tally } from '../helpers.js';
import type { ConformanceCase } from '../types.js';
import { idsOf, numbered, TEST_TYPE } from './common.js';
import {
  flagged,
  missingDetail,
  waitUntil,
  waitForAll,
  expectExactlyOnce,
  bounded,
  Publisher,
  connectMany,
  CONCURRENCY,
} from './volume-support.js';

const volume: ConformanceCase = {
  id: '04',
  title:
    'volume: messages from many concurrent publishers to one queue with several consumer instances are each handled exactly once',
  run: async (ctx) => {
    const publishers = ctx.count(10, 50);
    const total = ctx.count(100, 5_000);
    const instances = ctx.capabilities.competingConsumers ? ctx.count(3, 5) : 1;
    if (!ctx.capabilities.competingConsumers) {
      ctx.note('capabilities.competingConsumers is false: one consumer instance instead of several');
    }
    const q = ctx.queue('volume');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const shares = new Array<number>(instances).fill(0);
    const consumers = await connectMany(ctx, instances);
    await Promise.all(
      consumers.map((broker, i) =>
        broker.consumer().subscribe(
          q,
          (m) => {
            tally.add(m.id, flagged(m));
            shares[i] = (shares[i] ?? 0) + 1;
          },
          { concurrency: CONCURRENCY },
        ),
      ),
    );
    await new Publisher(await ctx.connect(), publishers).publishAll(ctx, q, messages);
    await waitForAll(ctx, tally, expected, `all ${total} messages to be handled by ${instances} consumer instance(s)`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(tally, expected, 'the consumer instances together');
    ctx.note(`shares per instance: ${shares.join('/')}`);
  },
};

const manyTopics: ConformanceCase = {
  id: '05a',
  title:
    'many destinations: many topics published to at once on one broker: each private subscription gets exactly the messages of its own topic',
  run: async (ctx) => {
    const topicCount = ctx.count(10, 20);
    const perTopic = ctx.count(10, 100);
    const base = ctx.topicBase('many-topics');
    const broker = await ctx.connect();
    const consumer = broker.consumer();
    const lanes = Array.from({ length: topicCount }, (_, i) => {
      const messages = numbered(perTopic);
      return {
        topic: ctx.topic(`${base}.t${i}`),
        messages,
        expected: idsOf(messages),
        tally: new Tally(),
        misrouted: [] as string[],
      };
    });
    await Promise.all(
      lanes.map((lane) =>
        consumer.subscribe(
          lane.topic,
          (m) => {
            lane.tally.add(m.id, flagged(m));
            if (m.destination.kind !== 'topic' || m.destination.name !== lane.topic.name) {
              lane.misrouted.push(`${m.id} from ${m.destination.kind} ${m.destination.name}`);
            }
          },
          { concurrency: CONCURRENCY },
        ),
      ),
    );
    // Interleaved, one publisher per topic: message i goes to topic i % topicCount.
    const interleaved = Array.from(
      { length: topicCount * perTopic },
      (_, i) => lanes[i % topicCount]?.messages[Math.floor(i / topicCount)] as OutgoingMessage,
    );
    await new Publisher(broker, topicCount).publishAll(
      ctx,
      (i) => (lanes[i % topicCount] as (typeof lanes)[number]).topic,
      interleaved,
    );
    await waitUntil(
      ctx,
      () => lanes.every((lane) => lane.tally.hasAll(lane.expected)),
      `every one of ${topicCount} topics to receive its ${perTopic} messages`,
      () =>
        lanes
          .filter((lane) => !lane.tally.hasAll(lane.expected))
          .map((lane) => `${lane.topic.name}: ${missingDetail(lane.tally, lane.expected)}`)
          .join('; '),
    );
    await observeFor(ctx.quietMs);
    for (const lane of lanes) {
      expectExactlyOnce(lane.tally, lane.expected, `subscription to ${lane.topic.name}`);
      expect(lane.misrouted, `subscription to ${lane.topic.name}: destination of its messages`).toEqual([]);
    }
  },
};

const manyDestinations: ConformanceCase = {
  id: '05b',
  title:
    'many destinations: one consumer subscribed to many queues at once receives the message of each queue from that queue',
  run: async (ctx) => {
    const count = ctx.count(25, 100);
    const broker = await ctx.connect();
    const consumer = broker.consumer();
    const run = randomUUID().slice(0, 8);
    const lanes = Array.from({ length: count }, (_, i) => ({
      // One label per queue: ctx.queue() adds only 4 random characters to the label.
      queue: ctx.queue(`dest${i}`),
      id: `${run}-q${i}`,
      received: [] as string[],
      misrouted: [] as string[],
    }));
    await bounded(
      ctx,
      `${count} subscriptions`,
      Promise.all(
        lanes.map((lane) =>
          consumer.subscribe(lane.queue, (m) => {
            lane.received.push(m.id);
            if (m.destination.kind !== 'queue' || m.destination.name !== lane.queue.name) {
              lane.misrouted.push(`${m.id} from ${m.destination.kind} ${m.destination.name}`);
            }
          }),
        ),
      ),
    );
    await new Publisher(await ctx.connect(), count).publishAll(
      ctx,
      (i) => (lanes[i] as (typeof lanes)[number]).queue,
      lanes.map((lane, n) => ({ type: TEST_TYPE, id: lane.id, data: { n } })),
    );
    const waiting = (): string[] => lanes.filter((lane) => lane.received.length === 0).map((lane) => lane.queue.name);
    await waitUntil(
      ctx,
      () => waiting().length === 0,
      `a message on each of ${count} queues`,
      () => `${waiting().length} queues received nothing, e.g. ${waiting().slice(0, 5).join(', ')}`,
    );
    await observeFor(ctx.quietMs);
    for (const lane of lanes) {
      expect(lane.received, `messages received from ${lane.queue.name}`).toEqual([lane.id]);
      expect(lane.misrouted, `destination of the messages from ${lane.queue.name}`).toEqual([]);
    }
  },
};

/** Cases 04–05: volume and many destinations at once. */
export const VOLUME_CASES: readonly ConformanceCase[] = [volume, manyTopics, manyDestinations];
