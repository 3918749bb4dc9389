import {
  connect,
  DEFAULT_MAX_QUEUE_LENGTH,
  deleteMemoryHub,
  MEMORY_CAPABILITIES,
  memoryHub,
  SPEC_VERSION,
} from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { describeConformance, uniqueName } from '../src/index.js';

const hubName = uniqueName('conformance');
const url = `memory://${hubName}`;
const hub = memoryHub(hubName);

describeConformance({
  name: 'memory',
  connect: (options) => connect(url, options),
  capabilities: MEMORY_CAPABILITIES,
  publishRaw: (destination, raw) => {
    // What a foreign in-process publisher would hand the hub: no Ferry producer, headers as given.
    hub.publish(
      destination,
      {
        attributes: {
          id: randomUUID(),
          type: 'raw',
          source: 'raw-client',
          specversion: SPEC_VERSION,
          ...(raw.contentType === undefined ? {} : { datacontenttype: raw.contentType }),
        },
        headers: { ...raw.headers },
        body: raw.body,
      },
      false,
      DEFAULT_MAX_QUEUE_LENGTH,
    );
    return Promise.resolve();
  },
  cleanup: ({ queues, subscriptions }) => {
    for (const name of queues) hub.deleteQueue(name);
    for (const { topic, group } of subscriptions) if (group !== undefined) hub.deleteQueue(`~${topic}#${group}`);
    return Promise.resolve();
  },
  faults: {
    dropConnections: () => Promise.resolve(hub.dropConnections(50)),
    stopBroker: () => Promise.resolve(hub.stop()),
    startBroker: () => Promise.resolve(hub.start()),
    isolated: async (options) => {
      const connectionName = uniqueName('isolated');
      const broker = await connect(url, { ...options, connectionName });
      return {
        broker,
        disconnect: () => Promise.resolve(hub.stop(connectionName)),
        reconnect: () => Promise.resolve(hub.start(connectionName)),
      };
    },
  },
});

it('the memory conformance run leaves no queue behind', () => {
  expect(hub.queueNames()).toEqual([]);
});

afterAll(() => deleteMemoryHub(hubName));
