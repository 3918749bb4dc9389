import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ConfigurationError, type Capabilities } from '@ferry/core';

/** `ConnectOptions.amqp`: settings of the AMQP transport. Every field is optional. */
export interface AmqpConnectOptions {
  /** User name, when not in the URL (URL credentials win). */
  readonly username?: string;
  /** Password, when not in the URL. Never logged. */
  readonly password?: string;
  /** Heartbeat interval, seconds. Default 10: a dead peer is noticed within about 20 s. 0 turns heartbeats off (not advised). */
  readonly heartbeatSeconds?: number;
  /** TLS options for `amqps://` (ca, cert, key, passphrase, servername, rejectUnauthorized, ...). */
  readonly tls?: TlsOptions;
  /** How long one connection attempt may take (the first one, and each reconnect), ms. Default 10000. */
  readonly connectTimeoutMs?: number;
}

/** `queue(name, { amqp })` and `topic(name, { amqp })`: AMQP-specific destination hints. */
export interface AmqpHints {
  /**
   * Topics: the exchange to publish to and bind from, instead of `amq.topic` (e.g. a fanout exchange a
   * .NET service declares). Queues: ignored.
   */
  readonly exchange?: string;
  /** Type of `exchange` when Ferry declares it. Default `topic`. */
  readonly exchangeType?: 'topic' | 'fanout' | 'direct' | 'headers';
  /**
   * Never declare or change topology: only check that the exchange (topics) or queue (queues) exists
   * (`checkExchange` / `checkQueue`), for users without configure rights or topology another system owns.
   * Group and private queues of a topic subscription are still declared (they are Ferry's).
   */
  readonly passive?: boolean;
  /** Binding arguments (headers exchanges: e.g. `{ 'x-match': 'all', region: 'eu' }`). */
  readonly bindingArguments?: Readonly<Record<string, unknown>>;
  /** Queue type: `classic` (default) or `quorum` (replicated, counts deliveries). */
  readonly queueType?: 'classic' | 'quorum';
  /** `x-max-length`: most messages kept; what happens past it follows `overflow`. */
  readonly maxLength?: number;
  /** `x-overflow`. Default RabbitMQ's `drop-head`; `reject-publish` makes a full queue fail publishes. */
  readonly overflow?: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  /** `x-message-ttl`, ms: messages older than this are dropped (or dead-lettered by the broker's own DLX arguments). */
  readonly messageTtlMs?: number;
  /** Extra queue arguments passed as is (`x-*`). */
  readonly arguments?: Readonly<Record<string, unknown>>;
}

declare module '@ferry/core' {
  interface TransportHints {
    /** AMQP transport hints; other transports ignore them. */
    readonly amqp?: AmqpHints;
  }
  interface TransportConnectOptions {
    /** AMQP transport options; other transports ignore them. */
    readonly amqp?: AmqpConnectOptions;
  }
}

/** What the AMQP transport guarantees on RabbitMQ 3.10 with its defaults (classic queues). */
export const AMQP_CAPABILITIES: Capabilities = Object.freeze({
  competingConsumers: true,
  groups: true,
  wildcards: true,
  durableQueues: true,
  durableSubscriptions: true,
  orderedDelivery: true,
  redeliveryFlag: true,
  deliveryCount: false,
  unroutableDetection: true,
  nativeHeaders: true,
  maxMessageBytes: 134_217_728,
  crashDurable: true,
  failoverRedelivery: true,
});

/** Settings resolved from the URL and `ConnectOptions.amqp`. @internal */
export interface AmqpSettings {
  readonly url: string;
  readonly heartbeatSeconds: number;
  readonly connectTimeoutMs: number;
  readonly tls: TlsOptions | undefined;
  /** Decoded credentials, passed to amqplib as PLAIN (amqplib's own URL decoding mangles non-ASCII). */
  readonly credentials: { readonly username: string; readonly password: string } | undefined;
  readonly connectionName: string | undefined;
}

function nonNegativeInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ConfigurationError(`amqp.${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Reads and checks the AMQP options. @throws ConfigurationError */
export function resolveSettings(url: URL, options: AmqpConnectOptions = {}, connectionName?: string): AmqpSettings {
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') {
    throw new ConfigurationError(`The AMQP transport needs an amqp:// or amqps:// URL, got ${url.protocol}//`);
  }
  const heartbeatSeconds = nonNegativeInteger(options.heartbeatSeconds, 'heartbeatSeconds', 10);
  const connectTimeoutMs = nonNegativeInteger(options.connectTimeoutMs, 'connectTimeoutMs', 10_000);
  const target = new URL(url.href);
  if (!target.searchParams.has('heartbeat')) target.searchParams.set('heartbeat', String(heartbeatSeconds));
  const username = target.username !== '' ? decodeURIComponent(target.username) : options.username;
  const password = target.password !== '' ? decodeURIComponent(target.password) : options.password;
  target.username = '';
  target.password = '';
  return {
    url: target.href,
    heartbeatSeconds,
    connectTimeoutMs,
    tls: options.tls,
    credentials: username === undefined ? undefined : { username, password: password ?? '' },
    connectionName,
  };
}
