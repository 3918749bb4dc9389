import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { connect, type Broker, type ConnectOptions, type Destination } from '@ferry/core';
import type { ConformanceOptions, IsolatedBroker, RawMessage } from '@ferry/conformance';
import { FaultProxy } from '@ferry/conformance';
// From the package (dist), as connect() loads it: the session registry must be the same module instance.
import { persistentSessions, publishTopic } from '@ferry/mqtt';

/** The machine's Mosquitto (MQTT 5 and 3.1.1). */
export const MOSQUITTO = { host: '127.0.0.1', port: 1883 } as const;
/** RabbitMQ's MQTT plugin (3.1.1 only), moved to 1884 by scripts/brokers.sh. */
export const RABBITMQ_MQTT = { host: '127.0.0.1', port: 1884 } as const;

/** One broker under test: where it is, and how Ferry and a plain client talk to it. */
export interface MqttTarget {
  readonly host: string;
  readonly port: number;
  readonly protocolVersion: 4 | 5;
  readonly username?: string;
  readonly password?: string;
}

export const MOSQUITTO_V5: MqttTarget = { ...MOSQUITTO, protocolVersion: 5 };
export const MOSQUITTO_V4: MqttTarget = { ...MOSQUITTO, protocolVersion: 4 };
export const RABBITMQ_V4: MqttTarget = { ...RABBITMQ_MQTT, protocolVersion: 4, username: 'guest', password: 'guest' };

/** Fast reconnects for tests. */
export const TEST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 1_000 } as const;

/** One instance id per test file: durable subscriptions resume across the file's brokers. */
export const RUN_INSTANCE = `t${randomBytes(4).toString('hex')}`;

/** The Ferry URL of a target (through `address` when given, e.g. a fault proxy). */
export function urlOf(target: MqttTarget, address = `${target.host}:${target.port}`): string {
  const auth = target.username === undefined ? '' : `${target.username}:${target.password ?? ''}@`;
  return `mqtt://${auth}${address}?protocolVersion=${target.protocolVersion}`;
}

/** Connects Ferry with this run's stable instance id and test-sized session expiry. */
export function connectMqtt(target: MqttTarget, options: ConnectOptions = {}, address?: string): Promise<Broker> {
  return connect(urlOf(target, address), {
    reconnect: TEST_RECONNECT,
    ...options,
    mqtt: { instanceId: RUN_INSTANCE, sessionExpirySec: 900, ...options.mqtt },
  });
}

/** A plain mqtt.js client (no Ferry), as another MQTT service would use. */
export async function rawClient(target: MqttTarget, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync({
    host: target.host,
    port: target.port,
    protocolVersion: target.protocolVersion,
    reconnectPeriod: 0,
    ...(target.username === undefined ? {} : { username: target.username, password: target.password }),
    ...options,
  });
}

/** Publishes as a plain MQTT client: the payload, and (MQTT 5) the headers as user properties. */
export async function publishRaw(target: MqttTarget, destination: Destination, raw: RawMessage): Promise<void> {
  const client = await rawClient(target);
  try {
    const properties =
      target.protocolVersion === 5
        ? {
            ...(raw.headers === undefined ? {} : { userProperties: { ...raw.headers } }),
            ...(raw.contentType === undefined ? {} : { contentType: raw.contentType }),
          }
        : undefined;
    await client.publishAsync(publishTopic(destination), Buffer.from(raw.body), {
      qos: 1,
      ...(properties === undefined ? {} : { properties }),
    });
  } finally {
    await client.endAsync();
  }
}

/**
 * Removes the persistent sessions this process created (clean start with each client id) from `target`:
 * all of them, whichever address (a fault proxy, say) they were made through. An id the broker does not
 * know costs one empty session.
 */
export async function removeSessions(target: MqttTarget): Promise<number> {
  const ids = persistentSessions();
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (clientId) => {
        const client = await rawClient(target, {
          clientId,
          clean: true,
          ...(target.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
        }).catch(() => undefined);
        await client?.endAsync().catch(() => undefined);
      }),
    );
  }
  return ids.length;
}

/** A broker behind its own fault proxy: `disconnect()` cuts and refuses it, `reconnect()` lets it back. */
export async function isolatedBroker(target: MqttTarget, options: ConnectOptions = {}): Promise<IsolatedBroker> {
  const proxy = await FaultProxy.start({ target: { host: target.host, port: target.port } });
  const broker = await connectMqtt(target, options, proxy.address);
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

/** Why each `false` capability is false, per broker. */
export function reasonsFor(target: MqttTarget): NonNullable<ConformanceOptions['reasons']> {
  const rabbit = target.port === RABBITMQ_MQTT.port;
  return {
    durableQueues:
      'an MQTT broker keeps messages only for sessions that subscribed: a message published before any subscription existed is dropped',
    failoverRedelivery: rabbit
      ? 'without shared subscriptions a queue has one consumer; its unacknowledged message waits in its session until it returns'
      : "Mosquitto keeps a dead member's unacknowledged message in that member's session until it returns (eclipse-mosquitto#2662)",
    deliveryCount: 'MQTT has no delivery count (only the DUP flag)',
    ...(target.protocolVersion === 4
      ? {
          nativeHeaders: 'MQTT 3.1.1 has no headers: the envelope travels as a structured CloudEvents JSON payload',
          unroutableDetection:
            'MQTT 3.1.1 has no reason codes: the broker acknowledges a publish nobody subscribes to, and drops it',
        }
      : {}),
    ...(rabbit
      ? {
          competingConsumers: "RabbitMQ's MQTT plugin (3.10) has no shared subscriptions",
          groups: "RabbitMQ's MQTT plugin (3.10) has no shared subscriptions",
        }
      : {}),
  };
}

/** The options every MQTT conformance run against `target` shares; with `proxy`, every connection goes through it. */
export function conformanceOptions(
  target: MqttTarget,
  proxy?: FaultProxy,
): Omit<ConformanceOptions, 'name' | 'capabilities'> {
  return {
    connect: (options) => connectMqtt(target, options, proxy?.address),
    publishRaw: (destination, raw) => publishRaw(target, destination, raw),
    reasons: reasonsFor(target),
    faults: { isolated: (options) => isolatedBroker(target, options) },
  };
}
