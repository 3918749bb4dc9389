import {
  connect,
  createMemoryTransport,
  type Delivery,
  type Envelope,
  MEMORY_CAPABILITIES,
  memoryHub,
  topic,
  type Transport,
} from '@ferry/core';
import { describe, expect, it } from 'vitest';
import { CASES } from '../src/cases/index.js';
import { RunContext } from '../src/context.js';
import { resolveProfile } from '../src/profile.js';
import type { ConformanceOptions } from '../src/types.js';
import { uniqueName } from '../src/index.js';

/**
 * The suite is only worth something if it fails on a broken transport. Each mutant is the memory
 * transport with one defect real transports have had; the case named for it must fail.
 */
type Mutation = (inner: Transport) => Partial<Transport>;

function mutantOptions(mutation: Mutation): ConformanceOptions {
  const hubName = uniqueName('mutant');
  const hub = memoryHub(hubName);
  const options: ConformanceOptions = {
    name: 'mutant',
    capabilities: MEMORY_CAPABILITIES,
    connect: (options) =>
      connect(`mutant://${hubName}`, {
        ...options,
        transports: {
          mutant: async (context) => {
            const inner = await createMemoryTransport({ ...context, url: new URL(`memory://${hubName}`) });
            const overrides = mutation(inner);
            return {
              name: inner.name,
              capabilities: inner.capabilities,
              status: () => inner.status(),
              on: (event, listener) => inner.on(event, listener),
              publish: (destination, envelope, publishOptions) => inner.publish(destination, envelope, publishOptions),
              subscribe: (source, subscribeOptions, deliver) => inner.subscribe(source, subscribeOptions, deliver),
              close: () => inner.close(),
              ...overrides,
            };
          },
        },
      }),
    publishRaw: () => Promise.reject(new Error('not used by the mutant cases')),
    faults: {
      dropConnections: () => Promise.resolve(hub.dropConnections(50)),
      stopBroker: () => Promise.resolve(hub.stop()),
      startBroker: () => Promise.resolve(hub.start()),
      isolated: async (isolatedOptions) => {
        const connectionName = uniqueName('isolated');
        const broker = await options.connect({ ...isolatedOptions, connectionName });
        return {
          broker,
          disconnect: () => Promise.resolve(hub.stop(connectionName)),
          reconnect: () => Promise.resolve(hub.start(connectionName)),
        };
      },
    },
  };
  return options;
}

async function runCase(id: string, mutation: Mutation): Promise<void> {
  const testCase = CASES.find((c) => c.id === id);
  if (testCase === undefined) throw new Error(`no case ${id}`);
  const options = mutantOptions(mutation);
  const profile = resolveProfile('short');
  const ctx = new RunContext(options, profile);
  // Short waits: a mutant fails by timing out on what never comes.
  Object.assign(ctx, { waitMs: 1_000 });
  try {
    await testCase.run(ctx);
  } finally {
    await ctx.dispose().catch(() => undefined);
  }
}

const withDelivery =
  (change: (delivery: Delivery) => Delivery): Mutation =>
  (inner) => ({
    subscribe: (source, options, deliver) => inner.subscribe(source, options, (d) => deliver(change(d))),
  });

describe('the conformance suite fails on broken transports', () => {
  it('03 catches a transport that drops header values with line breaks', async () => {
    const mutation: Mutation = (inner) => ({
      publish: (destination, envelope, options) => {
        const headers = Object.fromEntries(Object.entries(envelope.headers).filter(([, v]) => !v.includes('\n')));
        return inner.publish(destination, { ...envelope, headers }, options);
      },
    });
    await expect(runCase('03', mutation)).rejects.toThrow(/expected/i);
  });

  it('01a catches a transport that leaks its own headers into message.headers', async () => {
    const mutation = withDelivery((d) => ({
      ...d,
      envelope: { ...d.envelope, headers: { ...d.envelope.headers, 'x-broker-hop': '1' } },
    }));
    await expect(runCase('01a', mutation)).rejects.toThrow(/expected/);
  });

  it('04 catches a transport that delivers a message twice without flagging it', async () => {
    const mutation: Mutation = (inner) => ({
      subscribe: (source, options, deliver) =>
        inner.subscribe(source, options, async (d) => {
          await deliver({ ...d, ack: () => Promise.resolve() });
          await deliver(d);
        }),
    });
    await expect(runCase('04', mutation)).rejects.toThrow(/expected/i);
  });

  it('10b catches a transport that maps `*` like `#`', async () => {
    const mutation: Mutation = (inner) => ({
      subscribe: (source, options, deliver) =>
        inner.subscribe(source.kind === 'topic' ? topic(source.name.replaceAll('*', '#')) : source, options, deliver),
    });
    await expect(runCase('10b', mutation)).rejects.toThrow(/pattern/);
  });

  it('18 catches a transport that acknowledges before the handler ran', async () => {
    const mutation: Mutation = (inner) => ({
      subscribe: (source, options, deliver) =>
        inner.subscribe(source, options, async (d) => {
          await d.ack();
          await deliver({ ...d, ack: () => Promise.resolve() });
        }),
    });
    await expect(runCase('18', mutation)).rejects.toThrow(/Timed out .* reach consumer B/);
  });

  it('18 catches a transport that loses the redelivered flag it claims to have', async () => {
    const mutation = withDelivery((d) => {
      const { deliveryCount: _count, ...rest } = d;
      return { ...rest, redelivered: false, ack: d.ack, retry: d.retry, release: d.release };
    });
    await expect(runCase('18', mutation)).rejects.toThrow(/expected false to be true/);
  });

  it('21d catches a transport that resolves a publish before the broker has it', async () => {
    const mutation: Mutation = (inner) => {
      const pending = new Set<NodeJS.Timeout>();
      inner.on('disconnected', () => {
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
      });
      return {
        publish: (destination, envelope: Envelope, options) => {
          const timer = setTimeout(() => {
            pending.delete(timer);
            void inner.publish(destination, envelope, options).catch(() => undefined);
          }, 20);
          pending.add(timer);
          return Promise.resolve();
        },
      };
    };
    await expect(runCase('21d', mutation)).rejects.toThrow(/Timed out .* every accepted publish/);
  });
});
