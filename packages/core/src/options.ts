import { basename, extname } from 'node:path';
import type { BackoffOptions } from './backoff.js';
import type { Codec, JsonCodecOptions } from './codec.js';
import type { ConsumeMiddleware, PublishMiddleware } from './context.js';
import { ConfigurationError } from './errors.js';
import type { Logger } from './logger.js';
import type { TransportFactory } from './transport.js';

/**
 * Transport-specific connect options, one key per transport, added by each transport package by
 * module augmentation (e.g. `amqp?: AmqpConnectOptions`). Keys for other transports are ignored.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- open for module augmentation
export interface TransportConnectOptions {}

/** Retry policy of a subscription: exponential backoff with jitter, then the dead letter. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, counting the first delivery. Default 5; 1 = no retry. */
  readonly maxAttempts?: number;
}

/** Options of `connect()`. Every field is optional; defaults are documented per field. */
export interface ConnectOptions extends TransportConnectOptions {
  /** CloudEvents `source` of published messages. Default `FERRY_SOURCE`, else the main script's name. */
  readonly source?: string;
  /**
   * A name for this connection, shown by the broker's tools (AMQP `connection_name`, the MQTT client id's
   * prefix) and used by `memoryHub(name).dropConnections()` / `stop()` / `start()` to pick connections.
   */
  readonly connectionName?: string;
  /** How long a publish may wait (outage, back-pressure, confirm) before a `PublishError` (`FERRY_PUBLISH_TIMEOUT`), ms. Default 30000. */
  readonly publishTimeout?: number;
  /** Largest encoded message (body plus headers) published or consumed, bytes. Default: the transport's limit, at most 16 MiB. */
  readonly maxMessageBytes?: number;
  /** Extra codecs, chosen by content type; they replace built-ins of the same type. */
  readonly codecs?: readonly Codec[];
  /** Limits of the built-in JSON codec. */
  readonly json?: JsonCodecOptions;
  /** Where Ferry logs (pino-compatible). Default: silent. */
  readonly logger?: Logger;
  /** Reconnect backoff. Default: 100 ms doubling to 10 s, ±20 % jitter. */
  readonly reconnect?: BackoffOptions;
  /** Default retry policy of every subscription. */
  readonly retry?: RetryOptions;
  /** Middleware every producer and consumer of this broker runs (before their own). */
  readonly middleware?: {
    /** Publish middleware for every producer of the broker, outermost first (after tracing). */
    readonly publish?: readonly PublishMiddleware[];
    /** Consume middleware for every consumer of the broker, outermost first (after tracing), e.g. `idempotency()`. */
    readonly consume?: readonly ConsumeMiddleware[];
  };
  /** Extra or replacement transports by URL scheme (without `:`): a factory, or a module specifier exporting `createTransport`. */
  readonly transports?: Readonly<Record<string, TransportFactory | string>>;
}

/** Options of `broker.producer()`. */
export interface ProducerOptions {
  /** Overrides `ConnectOptions.publishTimeout` for this producer, ms. */
  readonly publishTimeout?: number;
  /** Most publishes waiting for the broker at once (e.g. during an outage); past it a publish fails at once with `FERRY_OVERFLOW`. Default 10000. */
  readonly maxPendingPublishes?: number;
  /** Publish middleware, run after the broker's, first added outermost. */
  readonly middleware?: readonly PublishMiddleware[];
}

/** Options of `broker.consumer()`. */
export interface ConsumerOptions {
  /** Consume middleware, run after the broker's, first added outermost. */
  readonly middleware?: readonly ConsumeMiddleware[];
  /** Default retry policy of this consumer's subscriptions. */
  readonly retry?: RetryOptions;
  /** How long `close()` waits for in-flight handlers before giving their messages back, ms. Default 30000. */
  readonly closeTimeoutMs?: number;
}

/** Options of `consumer.subscribe()`. Names fixed by DESIGN.md; more fields welcome. */
export interface SubscribeOptions {
  /** Topic only: consumers in one group compete for the group's copy. Without it the subscription is private. */
  readonly group?: string;
  /** Handlers in flight at once, and the broker prefetch. Default 1 (keeps order). */
  readonly concurrency?: number;
  /** Retry policy; fields fall back to the consumer's, then the broker's, then the defaults. */
  readonly retry?: RetryOptions;
  /** After this, `message.signal` aborts and the attempt counts as failed, ms. Default: none. */
  readonly handlerTimeoutMs?: number;
  /** `false`: skip the codec and hand `data` to the handler as the raw `Buffer` (e.g. to inspect a dead letter). Default `true`. */
  readonly decode?: boolean;
}

/** Default retry policy. */
export const DEFAULT_RETRY = Object.freeze({
  /** Attempts in all, the first delivery included. */
  maxAttempts: 5,
  /** Delay before attempt 2, ms. */
  initialDelayMs: 200,
  /** Longest delay, ms. */
  maxDelayMs: 30_000,
  /** Each delay is the previous one times this. */
  factor: 2,
  /** Each delay is spread by ± this fraction of it. */
  jitter: 0.2,
});

/** Default publish timeout, ms (DESIGN.md). */
export const DEFAULT_PUBLISH_TIMEOUT = 30_000;
/** Default `maxMessageBytes` cap: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A retry policy with every field set. */
export type ResolvedRetry = Required<RetryOptions>;

/** Merges retry policies, later ones winning field by field. @throws ConfigurationError */
export function resolveRetry(...layers: ReadonlyArray<RetryOptions | undefined>): ResolvedRetry {
  const merged: Record<string, number> = { ...DEFAULT_RETRY };
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) merged[key] = value as number;
  }
  const retry = merged as ResolvedRetry;
  if (!Number.isInteger(retry.maxAttempts) || retry.maxAttempts < 1) {
    throw new ConfigurationError(`retry.maxAttempts must be an integer >= 1, got ${retry.maxAttempts}`);
  }
  return retry;
}

/** Checks a positive integer option. @throws ConfigurationError */
export function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`${name} must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** The default CloudEvents source: `FERRY_SOURCE`, else the main script's base name, else the process title. */
export function defaultSource(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['FERRY_SOURCE'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const main = process.argv[1];
  if (main !== undefined && main !== '') return basename(main, extname(main));
  return process.title || 'ferry';
}
