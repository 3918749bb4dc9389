/**
 * The order-processing example on every transport, against the real brokers: memory://, RabbitMQ over
 * AMQP and STOMP, Mosquitto over MQTT 5. Each run has a prefix of its own (topic, groups, instance
 * names, Redis keys), so runs in parallel never meet, and removes what it left on the brokers.
 *
 * Proven per transport:
 * - every order reaches each of the three services, and each runs its handler exactly once
 *   (handler runs are counted behind the idempotency middleware, also after a duplicate publish);
 * - the two payment instances share the load: both handle some orders;
 * - a service that was down (its broker connection closed) gets the orders placed meanwhile when it
 *   comes back under the same instance name, and so does one instance of a service whose other
 *   instance kept running.
 * Plus: the shop refuses an invalid order, and the real command runs the whole story on memory://.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, delayBucket, deleteMemoryHub, memoryHub, ValidationError, type ConnectOptions } from '@ferry/core';
import { observeFor, uniqueName, waitFor } from '@ferry/conformance';
// From the package (dist), as connect() loads it: the session registry must be the same module instance.
import { persistentSessions } from '@ferry/mqtt';
import {
  Fleet,
  Ledger,
  openIdempotencyStore,
  openShop,
  ordersTopic,
  RETRY,
  SERVICE_NAMES,
  sampleOrder,
  sampleOrders,
  type Order,
  type ServiceName,
  type Shop,
  type StoreHandle,
} from '../src/index.js';

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const MOSQUITTO = { host: '127.0.0.1', port: 1883 } as const;
const REDIS_URL = 'redis://127.0.0.1:6379';
/** Bound of every wait for the services. */
const WAIT_MS = 10_000;
/** How long to watch for a late extra handler run before counting. */
const SETTLE_MS = 300;

interface TransportCase {
  readonly name: 'memory' | 'amqp' | 'mqtt' | 'stomp';
  readonly url: string;
}

const TRANSPORTS: readonly TransportCase[] = [
  { name: 'memory', url: 'memory://' },
  { name: 'amqp', url: AMQP_URL },
  { name: 'mqtt', url: `mqtt://${MOSQUITTO.host}:${MOSQUITTO.port}?protocolVersion=5` },
  { name: 'stomp', url: 'stomp://guest:guest@127.0.0.1:61613' },
];

/** Fast reconnects; MQTT sessions that outlive a failed clean-up expire within 15 minutes. */
const CONNECT_OPTIONS: ConnectOptions = {
  reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
  mqtt: { sessionExpirySec: 900 },
};

/** Prefixes used per transport, for the clean-up of the brokers and of Redis. */
const used: Array<{ readonly transport: TransportCase['name']; readonly prefix: string }> = [];
const prefixesOf = (...transports: ReadonlyArray<TransportCase['name']>): string[] =>
  used.filter((u) => transports.includes(u.transport)).map((u) => u.prefix);

afterAll(async () => {
  await removeGroupQueues(prefixesOf('amqp', 'stomp'));
  await removeMqttSessions(prefixesOf('mqtt'));
  await removeRedisKeys(used.map((u) => u.prefix));
});

describe('order processing', () => {
  describe.concurrent.each(TRANSPORTS)('on $name', (transport) => {
    it('every service handles every order once, instances share, a service that was down catches up', async () => {
      const prefix = uniqueName(`op-${transport.name}`);
      used.push({ transport: transport.name, prefix });
      const ledger = new Ledger();
      const store = await openIdempotencyStore({ keyPrefix: redisPrefix(prefix), redisUrl: REDIS_URL });
      let fleet: Fleet | undefined;
      let shop: Shop | undefined;
      try {
        fleet = await Fleet.start({
          url: transport.url,
          prefix,
          instances: { payment: 2, inventory: 1, shipping: 1 },
          store: store.store,
          observer: ledger,
          connectOptions: CONNECT_OPTIONS,
        });
        shop = await openShop({ url: transport.url, prefix, connectOptions: CONNECT_OPTIONS });
        await scenario(prefix, fleet, shop, ledger, store);
      } finally {
        await shop?.close();
        await fleet?.close();
        await store.close();
        if (transport.name === 'memory') {
          for (const group of SERVICE_NAMES) memoryHub().deleteQueue(`~${ordersTopic(prefix).name}#${group}`);
        }
      }
    }, 30_000);
  });

  it('the shop refuses an order that breaks the schema, and sends nothing', async () => {
    const hubName = uniqueName('op-invalid');
    const hub = `memory://${hubName}`;
    const shop = await openShop({ url: hub });
    const listener = await connect(hub);
    try {
      const received: unknown[] = [];
      await listener.consumer().subscribe(ordersTopic(), (message) => void received.push(message.data));
      const order = sampleOrder('bad', 1);
      await expect(shop.place({ ...order, total: order.total + 1 })).rejects.toBeInstanceOf(ValidationError);
      await expect(shop.place({ ...order, lines: [] })).rejects.toBeInstanceOf(ValidationError);
      await shop.place(order);
      await waitFor(() => received.length > 0, WAIT_MS, 'the valid order');
      await observeFor(50);
      expect(received).toEqual([order]);
    } finally {
      await shop.close();
      await listener.close();
      deleteMemoryHub(hubName);
    }
  });

  it('the command runs the whole story on memory:// and exits 0', async () => {
    const prefix = uniqueName('op-cli');
    used.push({ transport: 'memory', prefix });
    const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, '--url', 'memory://', '--orders', '4', '--prefix', prefix],
      { timeout: 20_000, env: { ...process.env, FERRY_URL: '' } },
    );
    expect(stdout).toContain('broker: memory:// (transport: memory)');
    for (const service of SERVICE_NAMES) {
      expect(stdout).toMatch(
        new RegExp(
          `${service}\\s+6 of 6 orders, each once\\s+\\(${prefix}-${service}-1 \\d+, ${prefix}-${service}-2 \\d+\\)`,
        ),
      );
    }
    expect(stdout).toContain('Done: every service handled every order exactly once');
  }, 30_000);
});

/** The story against running services: rounds of orders, a duplicate, a service down, an instance down. */
async function scenario(prefix: string, fleet: Fleet, shop: Shop, ledger: Ledger, store: StoreHandle): Promise<void> {
  const orders: Order[] = [];
  const place = async (batch: Order[]): Promise<string[]> => {
    for (const order of batch) await shop.place(order);
    orders.push(...batch);
    return batch.map((order) => order.orderId);
  };
  const handled = (services: readonly ServiceName[], ids: readonly string[]): Promise<void> =>
    ledger.handledAll(services, ids, WAIT_MS);

  // Every service gets every order; the two payment instances share them.
  const first = await place(sampleOrders(prefix, 8));
  await handled(SERVICE_NAMES, first);
  const shares = Object.values(ledger.shares('payment'));
  expect(shares, `payment's shares ${JSON.stringify(ledger.shares('payment'))}`).toHaveLength(2);
  expect(Math.min(...shares)).toBeGreaterThan(0);

  // Shipping goes down; payment and inventory go on; shipping catches up when it comes back.
  await fleet.stopService('shipping');
  const whileDown = await place(sampleOrders(prefix, 4, 9));
  await handled(['payment', 'inventory'], whileDown);
  expect(ledger.missing('shipping', whileDown)).toEqual(whileDown);
  await fleet.startService('shipping');
  await handled(['shipping'], whileDown);

  // One payment instance goes down while the other runs: the orders placed meanwhile are all handled
  // once it is back (on MQTT its share waits for it in its session; elsewhere its sibling takes them).
  await fleet.stopInstance('payment', 2);
  const siblingDown = await place(sampleOrders(prefix, 4, 13));
  await handled(['inventory', 'shipping'], siblingDown);
  await fleet.startInstance('payment', 2);
  await handled(['payment'], siblingDown);

  // The shop sends an order again with the same id: delivered again, handled once.
  const again = orders[0]!;
  await shop.place(again);
  await waitFor(
    () => SERVICE_NAMES.every((service) => ledger.deliveries(service, again.orderId) >= 2),
    WAIT_MS,
    () =>
      `the duplicate of ${again.orderId} at every service (${SERVICE_NAMES.map((s) => ledger.deliveries(s, again.orderId)).join('/')})`,
  );

  await observeFor(SETTLE_MS);
  const ids = orders.map((order) => order.orderId);
  for (const service of SERVICE_NAMES) {
    const runs = Object.fromEntries(ids.map((id) => [id, ledger.runs(service, id)]));
    expect(runs, `${service}'s handler runs per order (store: ${store.kind})`).toEqual(
      Object.fromEntries(ids.map((id) => [id, 1])),
    );
    expect(ledger.totalRuns(service)).toBe(ids.length);
  }
}

function redisPrefix(prefix: string): string {
  return `order-processing:${prefix}:idem:`;
}

/**
 * Deletes what the AMQP and STOMP runs may have declared on RabbitMQ: the group queues, and the dead
 * letter and retry delay queues of each group, should a delivery have been retried.
 */
async function removeGroupQueues(used: readonly string[]): Promise<void> {
  const ceiling = delayBucket(RETRY.maxDelayMs * 1.5);
  const buckets = new Set(Array.from({ length: ceiling }, (_, ms) => delayBucket(ms + 1)));
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    for (const prefix of used) {
      for (const service of SERVICE_NAMES) {
        const group = `${prefix}.order.placed.${service}`;
        // RabbitMQ answers delete-ok for a queue that does not exist.
        for (const queue of [group, `${group}.dlq`, ...[...buckets].map((ms) => `${group}.retry.${ms}`)]) {
          await channel.deleteQueue(queue);
        }
      }
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Ends the persistent MQTT sessions this file's instances made: a clean start with each client id. */
async function removeMqttSessions(used: readonly string[]): Promise<void> {
  const ids = persistentSessions().filter((id) => used.some((prefix) => id.startsWith(`ferry-${prefix}-`)));
  await Promise.all(
    ids.map(async (clientId) => {
      const client = await mqtt
        .connectAsync({
          ...MOSQUITTO,
          protocolVersion: 5,
          clientId,
          clean: true,
          reconnectPeriod: 0,
          properties: { sessionExpiryInterval: 0 },
        })
        .catch(() => undefined);
      await client?.endAsync().catch(() => undefined);
    }),
  );
}

/** Deletes the idempotency keys the runs wrote to Redis (if Redis was there). */
async function removeRedisKeys(used: readonly string[]): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch {
    return; // no Redis: the runs used the in-process store
  }
  try {
    for (const prefix of used) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix(prefix)}*`, 'COUNT', 500);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    await redis.quit().catch(() => undefined);
  }
}
