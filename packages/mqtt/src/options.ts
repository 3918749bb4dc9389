import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { ConfigurationError, type Capabilities } from '@ferry/core';

/** MQTT QoS levels. */
export type QoS = 0 | 1 | 2;

/** `ConnectOptions.mqtt`: settings of the MQTT transport. Every field is optional. */
export interface MqttConnectOptions {
  /** 5 (MQTT 5, the default) or 4 (MQTT 3.1.1). The URL's `?protocolVersion=` wins. */
  readonly protocolVersion?: 4 | 5;
  /** User name, when not in the URL (URL credentials win). */
  readonly username?: string;
  /** Password, when not in the URL. Never logged. */
  readonly password?: string;
  /**
   * A stable identity of this process among the consumers of the same queues and groups (e.g. a
   * StatefulSet pod name, `orders-worker-2`). Consumer client ids are derived from it, so a consumer
   * that restarts resumes its persistent session and gets what arrived while it was away. It must be
   * unique among running processes: two processes with one instance id take each other's sessions
   * over. Default: `ConnectOptions.connectionName`, else a random id per `connect()` (durable
   * subscriptions then last only as long as the broker object: see docs/transports/mqtt.md).
   */
  readonly instanceId?: string;
  /**
   * On `close()`, hand what this process's queue and group sessions hold to the other members (in any
   * process) and end the sessions, instead of keeping them for a consumer that comes back with the same
   * instance id. For scaling down for good: otherwise the broker keeps routing this instance's share to its
   * sessions until they expire. Default false.
   */
  readonly handOffOnClose?: boolean;
  /** QoS of publishes. Default 1. Deliveries to Ferry consumers always use QoS 1 (PUBACK after the handler). */
  readonly qos?: QoS;
  /**
   * How long the broker keeps a consumer's session (its subscriptions and waiting messages) while it
   * is disconnected, seconds (MQTT 5 session expiry; MQTT 3.1.1 sessions never expire on Mosquitto).
   * Default 86400 (one day, RabbitMQ's `mqtt.subscription_ttl` default).
   */
  readonly sessionExpirySec?: number;
  /**
   * Does the broker support shared subscriptions (`$share/…`)? Default: MQTT 5 reads the CONNACK's
   * Shared Subscription Available property; MQTT 3.1.1 probes the broker once per host and port.
   * RabbitMQ's MQTT plugin has none.
   */
  readonly sharedSubscriptions?: boolean;
  /**
   * How long a publish to a queue waits when an MQTT 5 broker answers "no matching subscribers" (its
   * consumers may be re-subscribing after a broker restart), sending it again, before it fails with
   * `FERRY_UNROUTABLE`, ms. Default 5000 (and never longer than `publishTimeout`).
   */
  readonly unroutableGraceMs?: number;
  /** Keep-alive, seconds. Default 10; 0 turns it off (not advised: a dead broker then goes unnoticed). */
  readonly keepaliveSec?: number;
  /** How long one connection attempt may take (socket, TLS, CONNECT → CONNACK), ms. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** TLS options for `mqtts://` (ca, cert, key, servername, rejectUnauthorized, ...). */
  readonly tls?: TlsOptions;
}

/** `queue(name, { mqtt })` and `topic(name, { mqtt })`: MQTT-specific destination hints. */
export interface MqttHints {
  /** QoS of publishes to this destination (overrides `ConnectOptions.mqtt.qos`). */
  readonly qos?: QoS;
  /** Publish with the MQTT retain flag (the broker keeps the last message for future subscribers). */
  readonly retain?: boolean;
}

declare module '@ferry/core' {
  interface TransportHints {
    /** MQTT transport hints; other transports ignore them. */
    readonly mqtt?: MqttHints;
  }
  interface TransportConnectOptions {
    /** MQTT transport options; other transports ignore them. */
    readonly mqtt?: MqttConnectOptions;
  }
}

/** Largest message the MQTT transport accepts, bytes. */
export const MQTT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * What the MQTT transport guarantees, from what the broker offers: shared subscriptions (competing
 * consumers, groups), the protocol version (native headers in MQTT 5 user properties), and whether a
 * stable instance id lets a returning consumer resume its session.
 */
export function mqttCapabilities(features: {
  readonly sharedSubscriptions: boolean;
  readonly protocolVersion: 4 | 5;
  readonly stableInstance: boolean;
  readonly crashDurable: boolean;
  /** The broker answers a publish nobody subscribes to with "no matching subscribers" (MQTT 5, detected). */
  readonly reportsUnrouted: boolean;
}): Capabilities {
  return Object.freeze({
    competingConsumers: features.sharedSubscriptions,
    groups: features.sharedSubscriptions,
    wildcards: true,
    durableQueues: false,
    durableSubscriptions: features.stableInstance,
    orderedDelivery: true,
    redeliveryFlag: true,
    deliveryCount: false,
    unroutableDetection: features.reportsUnrouted,
    nativeHeaders: features.protocolVersion === 5,
    maxMessageBytes: MQTT_MAX_MESSAGE_BYTES,
    crashDurable: features.crashDurable,
    // Mosquitto keeps an unacknowledged message in the session of the member it sent it to (#2662).
    failoverRedelivery: false,
  });
}

/**
 * How many unacknowledged messages the broker may send one subscription (MQTT 5 Receive Maximum): its
 * concurrency plus room for retries waiting out their delay. @internal
 */
export function receiveWindow(concurrency: number): number {
  return Math.min(65_535, Math.max(concurrency * 2, concurrency + 10));
}

/** Settings resolved from the URL and `ConnectOptions.mqtt`. @internal */
export interface MqttSettings {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly protocolVersion: 4 | 5;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly instanceId: string;
  /** True when the instance id was configured (not generated): sessions outlive this process. */
  readonly stableInstance: boolean;
  readonly handOffOnClose: boolean;
  readonly qos: QoS;
  readonly sessionExpirySec: number;
  readonly sharedSubscriptions: boolean | undefined;
  readonly keepaliveSec: number;
  readonly unroutableGraceMs: number;
  readonly connectTimeoutMs: number;
  readonly tlsOptions: TlsOptions | undefined;
}

function nonNegativeInteger(value: unknown, name: string, fallback: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new ConfigurationError(`mqtt.${name} must be an integer in [0, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function qosOf(value: unknown, name: string): QoS | undefined {
  if (value === undefined) return undefined;
  if (value !== 0 && value !== 1 && value !== 2) {
    throw new ConfigurationError(`${name} must be 0, 1 or 2, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The QoS of a destination hint, checked. @throws ConfigurationError */
export function hintQos(value: unknown): QoS | undefined {
  return qosOf(value, 'mqtt.qos hint');
}

const INSTANCE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads `mqtt://[user:password@]host[:1883][?protocolVersion=5]` and `mqtts://…` (TLS, port 8883).
 * @throws ConfigurationError
 */
export function resolveSettings(url: URL, options: MqttConnectOptions = {}, connectionName?: string): MqttSettings {
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
    throw new ConfigurationError(`The MQTT transport needs an mqtt:// or mqtts:// URL, got ${url.protocol}//`);
  }
  const tls = url.protocol === 'mqtts:';
  const fromUrl = url.searchParams.get('protocolVersion');
  const version = fromUrl === null ? (options.protocolVersion ?? 5) : Number(fromUrl);
  if (version !== 4 && version !== 5) {
    throw new ConfigurationError(
      `mqtt protocolVersion must be 4 (MQTT 3.1.1) or 5 (MQTT 5), got ${JSON.stringify(fromUrl ?? options.protocolVersion)}`,
    );
  }
  const configured = options.instanceId ?? connectionName;
  if (configured !== undefined && !INSTANCE.test(configured)) {
    throw new ConfigurationError(
      `mqtt.instanceId (or connectionName) must be 1-64 letters, digits, '.', '_' or '-', got ${JSON.stringify(configured)}`,
    );
  }
  const shared = url.searchParams.get('sharedSubscriptions');
  if (shared !== null && shared !== 'true' && shared !== 'false') {
    throw new ConfigurationError(`mqtt ?sharedSubscriptions= must be true or false, got "${shared}"`);
  }
  return {
    tls,
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port === '' ? (tls ? 8883 : 1883) : Number(url.port),
    protocolVersion: version,
    username: url.username !== '' ? decodeURIComponent(url.username) : options.username,
    password: url.password !== '' ? decodeURIComponent(url.password) : options.password,
    instanceId: configured ?? randomBytes(5).toString('hex'),
    stableInstance: configured !== undefined,
    handOffOnClose: options.handOffOnClose === true,
    qos: qosOf(options.qos, 'mqtt.qos') ?? 1,
    sessionExpirySec: nonNegativeInteger(options.sessionExpirySec, 'sessionExpirySec', 86_400, 0xffffffff),
    sharedSubscriptions: shared === null ? options.sharedSubscriptions : shared === 'true',
    keepaliveSec: nonNegativeInteger(options.keepaliveSec, 'keepaliveSec', 10, 65_535),
    unroutableGraceMs: nonNegativeInteger(options.unroutableGraceMs, 'unroutableGraceMs', 5_000),
    connectTimeoutMs: nonNegativeInteger(options.connectTimeoutMs, 'connectTimeoutMs', 10_000),
    tlsOptions: options.tls,
  };
}
