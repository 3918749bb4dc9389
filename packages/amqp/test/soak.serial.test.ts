import { queue } from '@ferry/core';
import { expectSoakPassed, runSoak, soakSize, uniqueName } from '@ferry/conformance';
import { afterAll, describe, it } from 'vitest';
import { deleteQueues, queueDepth } from './admin.js';
import { connectAmqp, rabbitmqctl } from './broker.js';

/** 20,000 in the full profile (`npm run test:full`); 2,000 in `npm test` (DESIGN: short fault tests there). */
const TOTAL = soakSize();

describe(`amqp soak: ${TOTAL} messages at full speed while every connection is dropped three times`, () => {
  const q = queue(uniqueName('ferry-soak'));

  afterAll(() => deleteQueues([q.name, `${q.name}.dlq`]));

  it('loses nothing; every duplicate is flagged or carries an id already delivered; the idempotent handler sees none', async () => {
    const consumers = await Promise.all([connectAmqp(), connectAmqp()]);
    const publisher = await connectAmqp({ publishTimeout: 20_000 });
    const dropAll = async (): Promise<void> => {
      await rabbitmqctl('close_all_connections', 'ferry soak: dropping every connection');
    };
    try {
      const report = await runSoak({
        queue: q,
        publisher,
        consumers,
        total: TOTAL,
        faults: [dropAll, dropAll, dropAll],
        depth: () => queueDepth(q.name),
      });
      console.info(`[amqp soak] ${JSON.stringify(report)}`);
      expectSoakPassed(report);
    } finally {
      await Promise.all([...consumers, publisher].map((b) => b.close()));
    }
  }, 300_000);
});
