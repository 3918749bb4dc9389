import { topic } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { idsOf, numbered, TEST_TYPE } from './common.js';

async function topicIsolation(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const base = ctx.topicBase('isolation');
  const q = ctx.queue('isolation');
  const sameName = topic(q.name.replaceAll('.', '-'));
  const consumer = broker.consumer();
  const onOrders = new Tally();
  const onQueue = new Tally();
  const onSameNameTopic = new Tally();
  await consumer.subscribe(topic(`${base}.orders`), (m) => onOrders.add(m.id));
  await consumer.subscribe(q, (m) => onQueue.add(m.id));
  await consumer.subscribe(sameName, (m) => onSameNameTopic.add(m.id));
  const producer = broker.producer();
  const neighbours = [`${base}.orders-eu`, `${base}.orders.eu`, `${base}.order`, `${base}.ordersx`, `${base}`];
  for (const key of neighbours) await producer.publish(topic(key), { type: TEST_TYPE, id: `leak-${key}`, data: key });
  const expected = numbered(ctx.count(10, 50));
  for (const m of expected) await producer.publish(topic(`${base}.orders`), m);
  await producer.publish(q, { type: TEST_TYPE, id: 'to-queue', data: 'q' });
  await producer.publish(sameName, { type: TEST_TYPE, id: 'to-topic', data: 't' });
  await ctx.waitFor(
    () => onOrders.hasAll(idsOf(expected)) && onQueue.distinct === 1 && onSameNameTopic.distinct === 1,
    'every message on its own destination',
  );
  await observeFor(ctx.quietMs);
  expect(onOrders.unexpected(idsOf(expected))).toEqual([]);
  expect(onOrders.duplicates).toBe(0);
  expect(onQueue.count('to-queue')).toBe(1);
  expect(onQueue.distinct).toBe(1);
  expect(onSameNameTopic.count('to-topic')).toBe(1);
  expect(onSameNameTopic.distinct).toBe(1);
}

async function wildcardRouting(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const base = ctx.topicBase('route');
  const keys = ['a.b.c', 'a.x.c', 'a.b', 'a.b.c.d', 'b.b.c', 'a', 'a.c', 'b.b'];
  const patterns: Record<string, string[]> = {
    'a.*.c': ['a.b.c', 'a.x.c'],
    'a.#': ['a.b.c', 'a.x.c', 'a.b', 'a.b.c.d', 'a', 'a.c'],
    '*.b': ['a.b', 'b.b'],
    '*.*.c': ['a.b.c', 'a.x.c', 'b.b.c'],
    '#': keys,
    'a.b.c': ['a.b.c'],
  };
  const tallies = new Map<string, Tally>();
  const consumer = broker.consumer();
  for (const pattern of Object.keys(patterns)) {
    const tally = new Tally();
    tallies.set(pattern, tally);
    const full = pattern === '#' ? `${base}.#` : `${base}.${pattern}`;
    await consumer.subscribe(topic(full), (m) => tally.add(m.subject ?? ''));
  }
  const producer = broker.producer();
  for (const key of keys) await producer.publish(topic(`${base}.${key}`), { type: TEST_TYPE, subject: key, data: key });
  await ctx.waitFor(
    () => Object.entries(patterns).every(([p, expected]) => tallies.get(p)!.hasAll(expected)),
    'every pattern to receive its keys',
  );
  await observeFor(ctx.quietMs);
  for (const [pattern, expected] of Object.entries(patterns)) {
    const tally = tallies.get(pattern)!;
    expect(tally.unexpected(new Set(expected)), `pattern ${pattern}`).toEqual([]);
    expect(tally.duplicates, `pattern ${pattern}`).toBe(0);
  }
}

/** Case 10: isolation and routing patterns. */
export const ROUTING_CASES: readonly ConformanceCase[] = [
  {
    id: '10a',
    title: 'isolation: neighbouring topics never leak in; a queue and a topic of the same name are separate',
    run: topicIsolation,
  },
  {
    id: '10b',
    title: 'routing: `*` matches exactly one word and a trailing `#` zero or more words, as documented',
    requires: ['wildcards'],
    run: wildcardRouting,
  },
];
