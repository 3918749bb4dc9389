import { queue } from '@ferry/core';
import { expectSoakPassed, runSoak, soakSize, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, describe, it } from 'vitest';
import { connectStomp, deleteQueues, isolatedBroker, queueDepth, rabbitmqctl } from './broker.js';

/** 20,000 in the full profile (`npm run test:full`); 2,000 in `npm test` (DESIGN: short fault tests there). */
const TOTAL = soakSize();

describe(`stomp soak: ${TOTAL} persistent messages while every connection is dropped three times`, () => {
  const q = queue(uniqueName('ferry-soak'));

  afterAll(() => deleteQueues([q.name, `${q.name}.dlq`]));

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
        depth: () => queueDepth(q.name),
      });
      console.info(`[stomp soak] ${JSON.stringify(report)}`);
      expectSoakPassed(report);
    } finally {
      await Promise.all([...consumers, publisher].map((b) => b.close()));
    }
  }, 300_000);
});
