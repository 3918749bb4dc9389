import { expect } from 'vitest';
import { Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { idsOf, numbered, publishAll } from './common.js';

async function queueKeepsWhileNobodySubscribed(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('kept');
  const messages = numbered(ctx.count(50, 500));
  const publisher = await ctx.connect();
  await publishAll(publisher.producer(), q, messages, 10);
  const later = await ctx.connect();
  const tally = new Tally();
  await later.consumer().subscribe(q, (m) => tally.add(m.id, m.redelivered), { concurrency: 10 });
  await ctx.waitFor(() => tally.hasAll(idsOf(messages)), 'every message kept for the later consumer');
  expect(tally.duplicates).toBe(0);
}

async function queueKeepsWhileConsumerAway(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('away');
  const first = await ctx.connect();
  const before = numbered(5);
  const tally = new Tally();
  await first.consumer().subscribe(q, (m) => tally.add(m.id));
  const publisher = await ctx.connect();
  const producer = publisher.producer();
  await publishAll(producer, q, before);
  await ctx.waitFor(() => tally.hasAll(idsOf(before)), 'the first consumer to be receiving');
  await first.close();
  const meanwhile = numbered(ctx.count(50, 500));
  await publishAll(producer, q, meanwhile, 10);
  const back = await ctx.connect();
  const after = new Tally();
  await back.consumer().subscribe(q, (m) => after.add(m.id), { concurrency: 10 });
  await ctx.waitFor(() => after.hasAll(idsOf(meanwhile)), 'what was published while the consumer was away');
  expect(after.unexpected(idsOf(meanwhile))).toEqual([]);
  expect(after.duplicates).toBe(0);
}

async function groupKeepsWhileAway(ctx: CaseContext): Promise<void> {
  const t = ctx.topic(`${ctx.topicBase('away')}.event`);
  const away = ctx.group('away');
  const present = ctx.group('present');
  const first = await ctx.connect();
  const stayer = await ctx.connect();
  const warmup = numbered(3);
  const firstTally = new Tally();
  const stayTally = new Tally();
  await first.consumer().subscribe(t, (m) => firstTally.add(m.id), { group: away });
  await stayer.consumer().subscribe(t, (m) => stayTally.add(m.id), { group: present });
  const publisher = await ctx.connect();
  const producer = publisher.producer();
  await publishAll(producer, t, warmup);
  await ctx.waitFor(() => firstTally.hasAll(idsOf(warmup)), 'the group to be receiving');
  await first.close();
  const meanwhile = numbered(ctx.count(50, 500));
  await publishAll(producer, t, meanwhile, 10);
  const back = await ctx.connect();
  const after = new Tally();
  await back.consumer().subscribe(t, (m) => after.add(m.id), { group: away, concurrency: 10 });
  await ctx.waitFor(() => after.hasAll(idsOf(meanwhile)), 'what the group missed while away');
  await ctx.waitFor(() => stayTally.hasAll(idsOf(meanwhile)), 'the other group to get everything too');
  expect(after.unexpected(idsOf(meanwhile))).toEqual([]);
  expect(after.duplicates).toBe(0);
  expect(stayTally.duplicates).toBe(0);
}

/** Case 11: durability — what a queue or group keeps while nobody consumes it. */
export const DURABILITY_CASES: readonly ConformanceCase[] = [
  {
    id: '11a',
    title: 'durability: messages published to a queue nobody ever subscribed to reach a later consumer',
    requires: ['durableQueues'],
    run: queueKeepsWhileNobodySubscribed,
  },
  {
    id: '11b',
    title: 'durability: a queue whose consumer went away keeps what is published meanwhile for the next one',
    requires: ['durableSubscriptions'],
    run: queueKeepsWhileConsumerAway,
  },
  {
    id: '11c',
    title: 'durability: a group whose consumer went away receives what was published meanwhile when it comes back',
    requires: ['groups', 'durableSubscriptions'],
    run: groupKeepsWhileAway,
  },
];
