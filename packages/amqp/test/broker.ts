import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import type { Destination } from '@ferry/core';
import { connect, type ConnectOptions, type Broker } from '@ferry/core';
import type { ConformanceOptions, CreatedResources, RawMessage } from '@ferry/conformance';
import { FaultProxy, uniqueName } from '@ferry/conformance';
import { subscriptionPlan, publishTarget } from '../src/topology.js';
import '../src/index.js';

/** The RabbitMQ every AMQP test uses (the machine's shared node). */
export const RABBITMQ_HOST = '127.0.0.1';
export const RABBITMQ_PORT = 5672;
export const AMQP_URL = `amqp://guest:guest@${RABBITMQ_HOST}:${RABBITMQ_PORT}`;

/** Fast reconnects for tests: a dropped connection comes back within a few hundred ms. */
export const TEST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 1_000 } as const;

/** Connects Ferry to the shared RabbitMQ. */
export function connectAmqp(options: ConnectOptions = {}, url = AMQP_URL): Promise<Broker> {
  return connect(url, { reconnect: TEST_RECONNECT, ...options });
}

/** A plain amqplib connection, as a non-Ferry service would use. */
export async function rawChannel(): Promise<{ channel: amqp.ConfirmChannel; close: () => Promise<void> }> {
  const connection = await amqp.connect(AMQP_URL, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  return { channel, close: () => connection.close() };
}

/** Publishes as a plain AMQP client: body and headers as given, no Ferry envelope. */
export async function publishRaw(destination: Destination, raw: RawMessage): Promise<void> {
  const { channel, close } = await rawChannel();
  try {
    if (destination.kind === 'queue') await channel.assertQueue(destination.name, { durable: true });
    const { exchange, routingKey } = publishTarget(destination);
    await new Promise<void>((resolve, reject) => {
      channel.publish(
        exchange,
        routingKey,
        Buffer.from(raw.body),
        { headers: { ...raw.headers }, ...(raw.contentType === undefined ? {} : { contentType: raw.contentType }) },
        (error: unknown) => (error ? reject(new Error('raw publish not confirmed', { cause: error })) : resolve()),
      );
    });
  } finally {
    await close();
  }
}

/** Deletes what a conformance case created: queues, dead-letter queues and group queues. */
export async function cleanup({ queues, subscriptions }: CreatedResources): Promise<void> {
  const names = new Set(queues);
  for (const { topic, group } of subscriptions) {
    if (group !== undefined)
      names.add(
        subscriptionPlan(
          { kind: 'topic', name: topic, options: {}, isPattern: topic.includes('*') || topic.includes('#') },
          group,
          'x',
        ).name,
      );
  }
  const connection = await amqp.connect(AMQP_URL);
  try {
    for (const name of names) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

/** A broker behind its own fault proxy: `disconnect()` cuts and refuses its connections, `reconnect()` lets it back. */
export async function isolatedBroker(options: ConnectOptions = {}): Promise<{
  broker: Broker;
  disconnect: () => Promise<void>;
  reconnect: () => Promise<void>;
}> {
  const proxy = await FaultProxy.start({ target: { host: RABBITMQ_HOST, port: RABBITMQ_PORT } });
  const broker = await connectAmqp(
    { ...options, connectionName: uniqueName('isolated') },
    `amqp://guest:guest@${proxy.address}`,
  );
  const close = broker.close.bind(broker);
  Object.defineProperty(broker, 'close', {
    value: async () => {
      proxy.accept();
      await close();
      await proxy.close();
    },
  });
  return {
    broker,
    disconnect: () => proxy.refuse(),
    reconnect: () => Promise.resolve(proxy.accept()),
  };
}

/** The options every AMQP conformance run shares. */
export function conformanceOptions(): Omit<ConformanceOptions, 'name' | 'capabilities'> {
  return {
    connect: (options) => connectAmqp(options),
    publishRaw,
    cleanup,
    faults: { isolated: isolatedBroker },
  };
}

const run = promisify(execFile);

/**
 * rabbitmqctl on the shared node. Commands that cut or stop it belong only in `*.serial.test.ts` files,
 * which the `serial` vitest project runs alone.
 */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}
