import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ConfigurationError, type Capabilities } from '@ferry/core';

/** `ConnectOptions.stomp`: settings of the STOMP transport. Every field is optional. */
export interface StompConnectOptions {
  /** Login, when not in the URL (URL credentials win). */
  readonly login?: string;
  /** Passcode, when not in the URL. Never logged. */
  readonly passcode?: string;
  /** The STOMP `host` header: the RabbitMQ virtual host. Default `?vhost=` in the URL, else `/`. */
  readonly vhost?: string;
  /** Heart-beat in both directions, ms. Default 10000; 0 turns heart-beating off (not advised). */
  readonly heartbeatMs?: number;
  /** TLS options for `stomps://` (ca, cert, key, servername, rejectUnauthorized, ...). */
  readonly tls?: TlsOptions;
  /** How long one connection attempt may take (socket, TLS, CONNECT → CONNECTED), ms. Default 10000. */
  readonly connectTimeoutMs?: number;
}

/** `queue(name, { stomp })` and `topic(name, { stomp })`: STOMP-specific destination hints. */
export interface StompHints {
  /**
   * Extra headers on SEND and SUBSCRIBE, e.g. RabbitMQ queue arguments (`x-max-length`, `x-queue-type`,
   * `x-message-ttl`). They must be the same wherever the queue is declared.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

declare module '@ferry/core' {
  interface TransportHints {
    /** STOMP transport hints; other transports ignore them. */
    readonly stomp?: StompHints;
  }
  interface TransportConnectOptions {
    /** STOMP transport options; other transports ignore them. */
    readonly stomp?: StompConnectOptions;
  }
}

/** What the STOMP transport guarantees on RabbitMQ's STOMP plugin (3.10). */
export const STOMP_CAPABILITIES: Capabilities = Object.freeze({
  competingConsumers: true,
  groups: true,
  wildcards: true,
  durableQueues: true,
  durableSubscriptions: true,
  orderedDelivery: true,
  redeliveryFlag: true,
  deliveryCount: false,
  unroutableDetection: false,
  nativeHeaders: true,
  maxMessageBytes: 4 * 1024 * 1024,
  crashDurable: true,
  failoverRedelivery: true,
});

/** Settings resolved from the URL and `ConnectOptions.stomp`. @internal */
export interface StompSettings {
  /** `tcp` (`stomp://` / `stomps://`) or `websocket` (`?transport=websocket`). */
  readonly transport: 'tcp' | 'websocket';
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** WebSocket URL (`ws://host:port/path`), for `transport: websocket`. */
  readonly webSocketUrl: string;
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  readonly vhost: string;
  readonly heartbeatMs: number;
  readonly connectTimeoutMs: number;
  readonly tlsOptions: TlsOptions | undefined;
  readonly connectionName: string | undefined;
}

function nonNegativeInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ConfigurationError(`stomp.${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Reads `stomp://[login:passcode@]host[:61613][?vhost=/]`, `stomps://…` (TLS, port 61614) and
 * `stomp://host:15674/ws?transport=websocket` (web-STOMP). @throws ConfigurationError
 */
export function resolveSettings(url: URL, options: StompConnectOptions = {}, connectionName?: string): StompSettings {
  if (url.protocol !== 'stomp:' && url.protocol !== 'stomps:') {
    throw new ConfigurationError(`The STOMP transport needs a stomp:// or stomps:// URL, got ${url.protocol}//`);
  }
  const tls = url.protocol === 'stomps:';
  const mode = url.searchParams.get('transport') ?? 'tcp';
  if (mode !== 'tcp' && mode !== 'websocket') {
    throw new ConfigurationError(`stomp:// transport must be tcp or websocket, got "${mode}"`);
  }
  const transport = mode;
  const port = url.port === '' ? (transport === 'websocket' ? 15674 : tls ? 61614 : 61613) : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const path = url.pathname === '' || url.pathname === '/' ? '/ws' : url.pathname;
  const wsHost = host.includes(':') ? `[${host}]` : host;
  return {
    transport,
    tls,
    host,
    port,
    webSocketUrl: `${tls ? 'wss' : 'ws'}://${wsHost}:${port}${path}`,
    login: url.username !== '' ? decodeURIComponent(url.username) : options.login,
    passcode: url.password !== '' ? decodeURIComponent(url.password) : options.passcode,
    vhost: url.searchParams.get('vhost') ?? options.vhost ?? '/',
    heartbeatMs: nonNegativeInteger(options.heartbeatMs, 'heartbeatMs', 10_000),
    connectTimeoutMs: nonNegativeInteger(options.connectTimeoutMs, 'connectTimeoutMs', 10_000),
    tlsOptions: options.tls,
    connectionName,
  };
}
