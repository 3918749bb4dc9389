import amqp from 'amqplib';
import { queue } from '@ferry/core';
import { runSoak, soakSize, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { AMQP_URL, connectStomp, isolatedBroker, rabbitmqctl } from './broker.js';

/** 20,000 in the full profile (`npm run test:full`); 2,000 in `npm test` (DESIGN: short fault tests there). */
const TOTAL = soakSize();

/** Messages waiting in a queue, read on a fresh connection (the faults close every connection). */
async function depth(name: string): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(name)).messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe(`stomp soak: ${TOTAL} persistent messages while every connection is dropped three times`, () => {
  const q = queue(uniqueName('ferry-soak'));

  afterAll(async () => {
    const connection = await amqp.connect(AMQP_URL);
    const channel = await connection.createChannel();
    await channel.deleteQueue(q.name).catch(() => undefined);
    await channel.deleteQueue(`${q.name}.dlq`).catch(() => undefined);
    await connection.close();
  });

  it('loses nothing; every duplicate is flagged or carries an id already delivered; the idempotent handler sees none', async () => {
    // Two drops close every STOMP connection of the node (rabbitmqctl); the second cuts one consumer
    // through the fault proxy and keeps it out until it noticed.
    const proxied = await isolatedBroker();
    const consumers = [await connectStomp(), proxied.broker];
    const publisher = await connectStomp({ publishTimeout: 20_000 });
    const dropAll = async (): Promise<void> => {
      await rabbitmqctl('close_all_connections', 'ferry soak: dropping every connection');
    };
    const cutOne = async (): Promise<void> => {
      await proxied.disconnect();
      // Kept out until it noticed the outage, then let back.
      await waitFor(() => proxied.broker.health().status !== 'up', 10_000, 'the cut consumer to notice');
      await proxied.reconnect();
    };
    try {
      const report = await runSoak({
        queue: q,
        publisher,
        consumers,
        total: TOTAL,
        faults: [dropAll, cutOne, dropAll],
        depth: () => depth(q.name),
      });
      console.info(`[stomp soak] ${JSON.stringify(report)}`);
      // The faults reached the brokers: every broker reports at least one outage.
      expect(report.disconnects).toBeGreaterThanOrEqual(3);
      expect(report.lost).toBe(0);
      expect(report.unexpected).toBe(0);
      expect(report.handlerDuplicates).toBe(0);
      expect(report.failedAfterRetries).toBe(0);
      expect(report.unflaggedDuplicates).toBeLessThanOrEqual(report.publishRetries + 200 * 3);
    } finally {
      await Promise.all([...consumers, publisher].map((b) => b.close()));
    }
  }, 300_000);
});
