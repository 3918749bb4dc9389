import { type Broker, queue } from '@ferry/core';
import { deferred, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeAdmin, deleteQueues } from './admin.js';
import { connectAmqp, rabbitmqctl } from './broker.js';

/**
 * Batched acknowledgements (src/acks.ts): handlers that finish in the same turn are acknowledged with one
 * `basic.ack multiple`, a delivery settled behind a slow one on its own. What the broker itself counts
 * (rabbitmqctl list_queues) proves that every message was acknowledged exactly as handled.
 */

const brokers: Broker[] = [];
const queues: string[] = [];

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await deleteQueues(queues.flatMap((q) => [q, `${q}.dlq`]));
  await closeAdmin();
});

/** Ready and unacknowledged counts of a queue as RabbitMQ reports them. */
async function counts(name: string): Promise<{ ready: number; unacked: number }> {
  const out = await rabbitmqctl(
    'list_queues',
    '-q',
    '--formatter',
    'json',
    'name',
    'messages_ready',
    'messages_unacknowledged',
  );
  const row = (JSON.parse(out) as { name: string; messages_ready: number; messages_unacknowledged: number }[]).find(
    (r) => r.name === name,
  );
  return { ready: row?.messages_ready ?? -1, unacked: row?.messages_unacknowledged ?? -1 };
}

async function open(): Promise<Broker> {
  const broker = await connectAmqp();
  brokers.push(broker);
  return broker;
}

describe('AMQP batched acknowledgements', () => {
  it('a slow handler holds only its own message: the others are acknowledged past it and the prefetch keeps flowing', async () => {
    const name = uniqueName('acks-slow');
    queues.push(name);
    const q = queue(name);
    const broker = await open();
    const first = deferred<void>();
    const handled = new Map<number, number>();
    let redelivered = 0;
    await broker.consumer().subscribe(
      q,
      async (message) => {
        const n = (message.data as { n: number }).n;
        handled.set(n, (handled.get(n) ?? 0) + 1);
        if (message.redelivered) redelivered++;
        if (n === 0) await first.promise; // held until 40 later messages went through 3 other slots
      },
      { concurrency: 4 },
    );
    const producer = broker.producer();
    for (let n = 0; n <= 40; n++) await producer.publish(q, { type: 'acks.test', data: { n } });
    // With concurrency 4 and message 0 held, 40 more can only pass if their acks free the prefetch slots.
    await waitFor(
      () => handled.size === 41,
      10_000,
      () => `${handled.size} of 41 handled`,
    );
    await waitFor(
      async () => (await counts(name)).unacked === 1,
      5_000,
      'only the held message unacknowledged at the broker',
    );
    first.resolve();
    await waitFor(async () => {
      const c = await counts(name);
      return c.ready === 0 && c.unacked === 0;
    }, 5_000);
    expect([...handled.values()].every((times) => times === 1)).toBe(true);
    expect(redelivered).toBe(0);
  });

  it('a burst at concurrency 100 leaves nothing unacknowledged, and nothing comes back after close', async () => {
    const name = uniqueName('acks-burst');
    queues.push(name);
    const q = queue(name);
    const broker = await open();
    const seen = new Set<number>();
    let calls = 0;
    const subscription = await broker.consumer().subscribe(
      q,
      (message) => {
        calls++;
        seen.add((message.data as { n: number }).n);
      },
      { concurrency: 100 },
    );
    const producer = broker.producer();
    const total = 2_000;
    for (let n = 0; n < total; n += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => producer.publish(q, { type: 'acks.test', data: { n: n + i } })),
      );
    }
    await waitFor(
      () => seen.size === total,
      15_000,
      () => `${seen.size} of ${total} handled`,
    );
    await subscription.close();
    const after = await counts(name);
    expect(after).toEqual({ ready: 0, unacked: 0 });
    expect(calls).toBe(total);
  });
});
