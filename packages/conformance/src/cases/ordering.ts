import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from '@ferry/core';
import { expect } from 'vitest';
import { type Deferred, deferred, observeFor, Tally } from '../helpers.js';
import type { ConformanceCase } from '../types.js';
import { idsOf, numbered, TEST_TYPE } from './common.js';
import { flagged, waitUntil, waitForAll, expectExactlyOnce, Publisher } from './volume-support.js';

interface Keyed {
  readonly key: string;
  readonly seq: number;
}

const KEYS = 16;

const ordering: ConformanceCase = {
  id: '06',
  title:
    'ordering: one sequential publisher and one consumer with concurrency 1: messages arrive in publish order, per key and overall, without gaps',
  requires: ['orderedDelivery'],
  run: async (ctx) => {
    const total = ctx.count(100, 1_000);
    const q = ctx.queue('ordering');
    const run = randomUUID().slice(0, 8);
    const messages: OutgoingMessage<Keyed>[] = Array.from({ length: total }, (_, seq) => {
      const key = `k${seq % KEYS}`;
      return { type: TEST_TYPE, id: `${run}-${seq}`, key, data: { key, seq } };
    });
    const received: Array<{ readonly key: string | undefined; readonly data: Keyed }> = [];
    const consumerBroker = await ctx.connect();
    await consumerBroker.consumer().subscribe<Keyed>(q, (m) => void received.push({ key: m.key, data: m.data }), {
      concurrency: 1,
    });
    // One producer: each publish starts once the previous one resolved.
    await new Publisher(await ctx.connect(), 1).publishAll(ctx, q, messages);
    await waitUntil(
      ctx,
      () => received.length >= total,
      `all ${total} messages`,
      () => {
        const seen = new Set(received.map((r) => r.data.seq));
        const gaps = messages.filter((m) => !seen.has(m.data.seq)).map((m) => m.data.seq);
        return `${gaps.length} missing, e.g. seq ${gaps.slice(0, 5).join(', ')}`;
      },
    );
    await observeFor(ctx.quietMs);
    expect(received.length, 'deliveries (no duplicates)').toBe(total);
    expect(
      received.filter((r) => r.key !== r.data.key).map((r) => r.data.seq),
      'messages whose key did not travel',
    ).toEqual([]);
    for (let k = 0; k < KEYS; k++) {
      const key = `k${k}`;
      const got = received.filter((r) => r.data.key === key).map((r) => r.data.seq);
      const sent = messages.filter((m) => m.data.key === key).map((m) => m.data.seq);
      expect(got, `order of key ${key}`).toEqual(sent);
    }
    expect(
      received.map((r) => r.data.seq),
      'overall order',
    ).toEqual(messages.map((m) => m.data.seq));
  },
};

const backPressure: ConformanceCase = {
  id: '07',
  title:
    'back-pressure: with concurrency 1 the next message is not handed to the handler until the current one settled (back-pressure)',
  run: async (ctx) => {
    const total = ctx.count(5, 20);
    const q = ctx.queue('backpressure');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const started: string[] = [];
    const gates: Array<Deferred<void>> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let releaseAll = false;
    const broker = await ctx.connect();
    await broker.consumer().subscribe(
      q,
      async (m) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        started.push(m.id);
        const gate = deferred();
        gates.push(gate);
        if (releaseAll) gate.resolve();
        try {
          await gate.promise;
        } finally {
          inFlight--;
          tally.add(m.id, flagged(m));
        }
      },
      { concurrency: 1 },
    );
    try {
      const publisher = await ctx.connect();
      await new Publisher(publisher, 5).publishAll(ctx, q, messages);
      for (let i = 0; i < total; i++) {
        await waitUntil(
          ctx,
          () => started.length > i,
          `the handler to start on message ${i + 1} of ${total} after message ${i} was released`,
          () => `${started.length} started, ${tally.deliveries} settled, ${inFlight} in flight`,
        );
        await observeFor(ctx.quietMs);
        expect(started.length, `handlers started while message ${i + 1} was held`).toBe(i + 1);
        expect(inFlight, `handlers in flight while message ${i + 1} was held`).toBe(1);
        gates[i]?.resolve();
      }
      await waitForAll(ctx, tally, expected, `all ${total} held messages to settle`);
      await observeFor(ctx.quietMs);
      expectExactlyOnce(tally, expected, 'the consumer');
      expect(maxInFlight, 'most handlers in flight at once').toBe(1);
    } finally {
      releaseAll = true;
      for (const gate of gates) gate.resolve();
    }
  },
};

/** Cases 06–07: order for one publisher and one consumer, and back-pressure at concurrency 1. */
export const ORDERING_CASES: readonly ConformanceCase[] = [ordering, backPressure];
