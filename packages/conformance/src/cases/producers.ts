import { ClosedError, ErrorCode, FerryError, type Message, PublishError, topic } from '@ferry/core';
import { expect } from 'vitest';
import { rejection, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { numbered, TEST_TYPE } from './common.js';

async function publisherClose(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('publisher-close');
  const consumerBroker = await ctx.connect();
  const tally = new Tally();
  await consumerBroker.consumer().subscribe(q, (m) => tally.add(m.id, m.redelivered), { concurrency: 20 });
  const publisher = await ctx.connect();
  const publishers = 20;
  const messages = numbered(ctx.count(200, 10_000));
  const resolved = new Set<string>();
  const failures: unknown[] = [];
  const producers = Array.from({ length: publishers }, () => publisher.producer());
  const publishing = messages.map((m, i) =>
    producers[i % publishers]!.publish(q, m).then(
      () => void resolved.add(m.id!),
      (error: unknown) => void failures.push(error),
    ),
  );
  await publisher.close();
  const settled = resolved.size + failures.length;
  await Promise.all(publishing);
  expect(settled, 'close() resolved before every publish had settled').toBe(messages.length);
  for (const error of failures) expect(error).toBeInstanceOf(FerryError);
  ctx.note(`${resolved.size} of ${messages.length} publishes resolved before close(), ${failures.length} rejected`);
  expect(resolved.size).toBeGreaterThan(0);
  await ctx.waitFor(
    () => tally.hasAll(resolved),
    `every resolved publish (missing ${tally.missing(resolved).join(', ')})`,
  );
  expect(tally.unflaggedDuplicates).toBe(0);
}

async function closedBroker(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('closed');
  const producer = broker.producer();
  const live = broker.producer();
  const consumer = broker.consumer();
  await producer.close();
  const afterProducerClose = await rejection(producer.publish(q, { type: TEST_TYPE, data: 1 }));
  expect(afterProducerClose).toBeInstanceOf(ClosedError);
  await broker.close();
  await expect(broker.close()).resolves.toBeUndefined();
  for (const attempt of [
    () => live.publish(q, { type: TEST_TYPE, data: 2 }),
    () => consumer.subscribe(q, () => undefined),
  ]) {
    const error = await rejection(attempt());
    expect(error).toBeInstanceOf(ClosedError);
    expect(error).toMatchObject({ code: ErrorCode.CLOSED });
  }
  expect(() => broker.producer()).toThrow(ClosedError);
  expect(() => broker.consumer()).toThrow(ClosedError);
  expect(broker.health().status).toBe('down');
}

async function unroutable(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const producer = broker.producer();
  const base = ctx.topicBase('nobody');
  // A fan-out event nobody listens to is normal: never an error, on every transport.
  await producer.publish(topic(`${base}.plain`), { type: TEST_TYPE, data: 1 });
  const mandatory = producer.publish(topic(`${base}.mandatory`, { mandatory: true }), { type: TEST_TYPE, data: 2 });
  if (ctx.capabilities.unroutableDetection) {
    const error = await rejection(mandatory);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: ErrorCode.UNROUTABLE });
  } else {
    await expect(mandatory).resolves.toBeUndefined();
    ctx.note('unroutableDetection is false: a mandatory publish nobody receives resolves and is dropped (documented)');
  }
  // With a subscriber, a mandatory publish is delivered.
  const got: Message[] = [];
  await broker.consumer().subscribe(topic(`${base}.mandatory`), (m) => void got.push(m));
  await producer.publish(topic(`${base}.mandatory`, { mandatory: true }), { type: TEST_TYPE, data: 3 });
  await ctx.waitFor(() => got.length === 1, 'the mandatory publish with a subscriber');
  expect(got[0]!.data).toBe(3);
}

/** Cases 01–03, 10 and 21: what goes in comes out, where it should, and publishing is honest. */

/** Case 21: producers — close, closed brokers and unroutable publishes. */
export const PRODUCER_CASES: readonly ConformanceCase[] = [
  {
    id: '21a',
    title:
      'producers: 20 parallel publishers then close(): close waits for every publish, and every publish that resolved is delivered',
    run: publisherClose,
  },
  {
    id: '21b',
    title:
      'producers: publish, subscribe and producer() on a closed broker fail with ClosedError; close() is idempotent',
    run: closedBroker,
  },
  {
    id: '21c',
    title:
      'producers: a topic publish nobody receives resolves; with mandatory it fails with FERRY_UNROUTABLE where capabilities.unroutableDetection',
    run: unroutable,
  },
];
