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
  Publisher,
  connectMany,
  CONCURRENCY,
} from './volume-support.js';

const competing: ConformanceCase = {
  id: '08',
  title:
    'competing consumers: the consumers of one queue share its messages: each handled once, and every consumer gets a share',
  requires: ['competingConsumers'],
  run: async (ctx) => {
    const instances = 3;
    const total = ctx.count(60, 300);
    const q = ctx.queue('competing');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const shares = new Array<number>(instances).fill(0);
    const brokers = await connectMany(ctx, instances);
    await Promise.all(
      brokers.map((broker, i) =>
        broker.consumer().subscribe(q, async (m) => {
          await busy();
          tally.add(m.id, flagged(m));
          shares[i] = (shares[i] ?? 0) + 1;
        }),
      ),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, q, messages);
    await waitForAll(ctx, tally, expected, `all ${total} messages to be handled by ${instances} competing consumers`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(tally, expected, 'the competing consumers together');
    shares.forEach((share, i) =>
      expect(share, `messages handled by consumer ${i + 1} of ${instances}`).toBeGreaterThan(0),
    );
    ctx.note(`shares: ${shares.join('/')}`);
  },
};

const fanOutGroups: ConformanceCase = {
  id: '09a',
  title: 'fan-out: every subscriber group on a topic (two members each) receives every message exactly once',
  requires: ['groups'],
  run: async (ctx) => {
    const groupCount = 3;
    const members = ctx.capabilities.competingConsumers ? 2 : 1;
    if (members === 1) ctx.note('capabilities.competingConsumers is false: one member per group');
    const total = ctx.count(30, 100);
    const t = ctx.topic(`${ctx.topicBase('fanout-groups')}.event`);
    const messages = numbered(total);
    const expected = idsOf(messages);
    const groups = Array.from({ length: groupCount }, (_, g) => ({
      name: ctx.group(`fanout${g}`),
      tally: new Tally(),
      shares: new Array<number>(members).fill(0),
    }));
    const brokers = await connectMany(ctx, members);
    await Promise.all(
      brokers.flatMap((broker, member) => {
        const consumer = broker.consumer();
        return groups.map((group) =>
          consumer.subscribe(
            t,
            (m) => {
              group.tally.add(m.id, flagged(m));
              group.shares[member] = (group.shares[member] ?? 0) + 1;
            },
            { group: group.name },
          ),
        );
      }),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, t, messages);
    await waitUntil(
      ctx,
      () => groups.every((group) => group.tally.hasAll(expected)),
      `each of ${groupCount} groups to receive all ${total} messages`,
      () =>
        groups
          .filter((group) => !group.tally.hasAll(expected))
          .map((group) => `group ${group.name}: ${missingDetail(group.tally, expected)}`)
          .join('; '),
    );
    await observeFor(ctx.quietMs);
    for (const group of groups) expectExactlyOnce(group.tally, expected, `group ${group.name}`);
    ctx.note(`member shares per group: ${groups.map((group) => group.shares.join('/')).join(', ')}`);
  },
};

const fanOutPrivate: ConformanceCase = {
  id: '09b',
  title: 'fan-out: every private subscription (no group) on a topic receives every message exactly once',
  run: async (ctx) => {
    const subscribers = 2;
    const total = ctx.count(30, 100);
    const t = ctx.topic(`${ctx.topicBase('fanout-private')}.event`);
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tallies = Array.from({ length: subscribers }, () => new Tally());
    const brokers = await connectMany(ctx, subscribers);
    await Promise.all(
      brokers.map((broker, i) =>
        broker
          .consumer()
          .subscribe(t, (m) => (tallies[i] as Tally).add(m.id, flagged(m)), { concurrency: CONCURRENCY }),
      ),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, t, messages);
    await waitUntil(
      ctx,
      () => tallies.every((tally) => tally.hasAll(expected)),
      `each of ${subscribers} private subscriptions to receive all ${total} messages`,
      () => tallies.map((tally, i) => `subscription ${i + 1}: ${missingDetail(tally, expected)}`).join('; '),
    );
    await observeFor(ctx.quietMs);
    tallies.forEach((tally, i) => expectExactlyOnce(tally, expected, `private subscription ${i + 1}`));
  },
};

/** Cases 08–09: competing consumers and fan-out to groups and private subscriptions. */
export const FAN_OUT_CASES: readonly ConformanceCase[] = [competing, fanOutGroups, fanOutPrivate];
