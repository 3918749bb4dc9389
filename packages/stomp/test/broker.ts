import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { Client } from '@stomp/stompjs';
import { connect, type Broker, type ConnectOptions, type Destination } from '@ferry/core';
import type { ConformanceOptions, CreatedResources, RawMessage } from '@ferry/conformance';
import { FaultProxy, uniqueName } from '@ferry/conformance';
import { resolveSettings } from '../src/options.js';
import { TcpStompSocket } from '../src/socket.js';
import { RABBITMQ } from '../src/topology.js';
import '../src/index.js';

export const STOMP_HOST = '127.0.0.1';
export const STOMP_PORT = 61613;
export const STOMP_URL = `stomp://guest:guest@${STOMP_HOST}:${STOMP_PORT}`;
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Fast reconnects for tests. */
export const TEST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 1_000 } as const;

export function connectStomp(options: ConnectOptions = {}, url = STOMP_URL): Promise<Broker> {
  return connect(url, { reconnect: TEST_RECONNECT, ...options });
}

/** A plain stompjs client (no Ferry), as another STOMP service would use. */
export async function rawStomp(url = STOMP_URL): Promise<Client> {
  const settings = resolveSettings(new URL(url));
  const client = new Client({
    webSocketFactory: () => new TcpStompSocket(settings),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    debug: () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onStompError = (frame) => reject(new Error(frame.headers['message']));
    client.activate();
  });
  return client;
}

/** Publishes as a plain STOMP client: body and headers as given, with a receipt. */
export async function publishRaw(destination: Destination, raw: RawMessage): Promise<void> {
  const client = await rawStomp();
  try {
    const receipt = uniqueName('raw');
    const done = new Promise<void>((resolve) => client.watchForReceipt(receipt, () => resolve()));
    client.publish({
      destination: RABBITMQ.publishTarget(destination),
      headers: {
        ...raw.headers,
        ...(raw.contentType === undefined ? {} : { 'content-type': raw.contentType }),
        receipt,
      },
      binaryBody: raw.body,
    });
    await done;
  } finally {
    await client.deactivate();
  }
}

/** Deletes RabbitMQ queues through AMQP (missing ones are fine): what STOMP cannot do. */
export async function deleteQueues(names: Iterable<string>): Promise<void> {
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

/** Messages waiting in a queue, read on a fresh connection (fault tests close every connection). */
export async function queueDepth(name: string): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(name)).messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Deletes what a case created (through AMQP on the same RabbitMQ): queues, dead letters, group queues. */
export async function cleanup({ queues, subscriptions }: CreatedResources): Promise<void> {
  const names = new Set(queues);
  for (const { topic, group } of subscriptions) {
    if (group === undefined) continue;
    const plan = RABBITMQ.subscription(
      { kind: 'topic', name: topic, options: {}, isPattern: topic.includes('*') || topic.includes('#') },
      group,
      'x',
      1,
    );
    names.add(plan.queueName);
  }
  await deleteQueues(names);
}

/** A broker behind its own fault proxy: `disconnect()` cuts and refuses it, `reconnect()` lets it back. */
export async function isolatedBroker(options: ConnectOptions = {}): Promise<{
  broker: Broker;
  disconnect: () => Promise<void>;
  reconnect: () => Promise<void>;
}> {
  const proxy = await FaultProxy.start({ target: { host: STOMP_HOST, port: STOMP_PORT } });
  const broker = await connectStomp(options, `stomp://guest:guest@${proxy.address}`);
  const close = broker.close.bind(broker);
  Object.defineProperty(broker, 'close', {
    value: async () => {
      proxy.accept();
      await close();
      await proxy.close();
    },
  });
  return { broker, disconnect: () => proxy.refuse(), reconnect: () => Promise.resolve(proxy.accept()) };
}

const run = promisify(execFile);

/** rabbitmqctl on the shared node: commands that cut or stop it belong only in `*.serial.test.ts` files. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** The options every STOMP conformance run shares. */
export function conformanceOptions(): Omit<ConformanceOptions, 'name' | 'capabilities'> {
  return { connect: (options) => connectStomp(options), publishRaw, cleanup, faults: { isolated: isolatedBroker } };
}
