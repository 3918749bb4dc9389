/**
 * The transport SPI: what a transport package implements so that core can run the whole contract
 * (envelope, codecs, validation, middleware, retry, dead letter, idempotency) on top of it.
 * Application code never calls it. A transport package's module exports `createTransport`.
 *
 * Rules every transport follows (the conformance suite checks them):
 * - `publish` resolves only once the broker took responsibility for the message (confirm, PUBACK,
 *   RECEIPT); it rejects with a {@link FerryError} otherwise, and gives up when `options.signal` aborts.
 * - `subscribe` resolves once the broker will deliver; `deliver` is called with at most
 *   `concurrency` unsettled deliveries at a time; each delivery is settled exactly once by core.
 * - `TransportSubscription.close()` stops new deliveries but keeps settling those in flight working.
 * - After a reconnect the transport re-declares topology and resumes subscriptions by itself.
 * - Foreign errors are wrapped once, here, into Ferry errors.
 *
 * @packageDocumentation
 */
import type { Backoff } from './backoff.js';
import type { Capabilities, HealthStatus } from './capabilities.js';
import type { Destination } from './destination.js';
import type { FerryError } from './errors.js';
import type { Logger } from './logger.js';
import type { Envelope } from './message.js';
import type { Redactor } from './redact.js';

/** Events a transport emits; the broker re-emits them (redacted) and derives `health()` from them. */
export interface TransportEvents {
  [event: string]: (...args: never[]) => void;
  /** The connection is (again) up and subscriptions are resumed. */
  connected: () => void;
  /** The connection was lost. */
  disconnected: (error: FerryError) => void;
  /** A reconnect attempt is scheduled. */
  reconnecting: (attempt: number, delayMs: number) => void;
  /** Something failed that does not change the connection state. */
  error: (error: FerryError) => void;
  /** The broker stopped accepting publishes on this connection (e.g. a RabbitMQ memory or disk alarm). */
  blocked: (reason: string) => void;
  /** Publishing is accepted again. */
  unblocked: () => void;
}

/** What core hands a transport factory. */
export interface TransportContext {
  /** The URL as given (with credentials: never log it; use `redactor`). */
  readonly url: URL;
  /** The connect options, for transport-specific keys (`options.amqp`, ...). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Where to log (`ConnectOptions.logger`; silent by default). Never log secrets: pass texts through `redactor`. */
  readonly logger: Logger;
  /** Knows this URL's secrets: use it on every error, log line and event the transport produces. */
  readonly redactor: Redactor;
  /** The reconnect strategy. */
  readonly reconnect: Backoff;
  /** Largest message accepted, bytes. */
  readonly maxMessageBytes: number;
  /** `ConnectOptions.connectionName`, checked: name the connection after it where the protocol can. */
  readonly connectionName?: string;
}

/** Creates a connected transport. @throws ConnectionError, ConfigurationError */
export type TransportFactory = (context: TransportContext) => Promise<Transport>;

/** Options core passes to {@link Transport.publish}. */
export interface TransportPublishOptions {
  /** Aborts when `publishTimeout` expires or the producer gives up. */
  readonly signal: AbortSignal;
  /** Reject with `FERRY_UNROUTABLE` when no queue receives the message. */
  readonly mandatory: boolean;
}

/** Options core passes to {@link Transport.subscribe}. */
export interface TransportSubscribeOptions {
  /** Topic subscriber group; absent for queues and private topic subscriptions. */
  readonly group?: string;
  /** Most unsettled deliveries at once (prefetch). */
  readonly concurrency: number;
  /** Unique id of this subscription within the process. */
  readonly id: string;
}

/** One delivered message, as the transport hands it to core. Core settles it exactly once. */
export interface Delivery {
  /** Attributes, headers and body as received (control headers of the protocol already removed). */
  readonly envelope: Envelope;
  /** The queue, or the topic with the concrete routing key the message was published with. */
  readonly destination: Destination;
  /** The broker flagged this copy as delivered before (AMQP `redelivered`, MQTT DUP, STOMP `redelivered`). */
  readonly redelivered: boolean;
  /** How often the broker delivered this copy, this time included (where the broker counts). */
  readonly deliveryCount?: number;
  /** Set when the transport could not read the envelope: core dead-letters the delivery. */
  readonly error?: FerryError;
  /** The handler succeeded (or the message was dead-lettered): remove it. */
  ack(): Promise<void>;
  /**
   * Publish `envelope` to this subscription's own queue after `delayMs` (never to the topic, so other
   * groups do not see it twice), and remove the original. Resolves once the copy is safe.
   */
  retry(envelope: Envelope, delayMs: number): Promise<void>;
  /** Give the message back unchanged for redelivery (used when the consumer closes mid-handler). */
  release(): Promise<void>;
}

/** A live subscription at the transport. */
export interface TransportSubscription {
  /** Stop new deliveries; settling the in-flight ones keeps working. Idempotent. */
  close(): Promise<void>;
}

/** A connected transport. */
export interface Transport {
  /** `memory`, `amqp`, `mqtt`, `stomp`, ... */
  readonly name: string;
  /** What this broker really guarantees: a frozen object, the same for the life of the transport. */
  readonly capabilities: Capabilities;
  /** Current connection state and transport details for `health()`. */
  status(): {
    /** `up`, `reconnecting` (lost, trying again) or `down` (closed). */
    readonly status: HealthStatus;
    /** Transport-specific facts for `health().details` (e.g. `blocked`); never secrets. */
    readonly details?: Readonly<Record<string, string | number | boolean>>;
  };
  /** Adds a listener for a {@link TransportEvents} event; core adds its listeners right after the factory resolved. */
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): unknown;
  /**
   * Sends one message. Resolves only once the broker took responsibility for it (confirm, PUBACK,
   * RECEIPT); rejects with a {@link FerryError} otherwise (`FERRY_UNROUTABLE` when `options.mandatory` and
   * no queue took it). Waits while disconnected, and gives up with `options.signal.reason` once the signal
   * aborts. A send in doubt at a dropped connection is sent again with the same id.
   */
  publish(destination: Destination, envelope: Envelope, options: TransportPublishOptions): Promise<void>;
  /**
   * Starts consuming `source` (a queue, or a topic pattern with or without a group). Resolves once the
   * broker will deliver; then calls `deliver` for each message, with at most `options.concurrency`
   * unsettled at a time. The subscription survives reconnects: the transport resumes it by itself.
   */
  subscribe(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
  ): Promise<TransportSubscription>;
  /** Close connections; called by core after consumers drained and producers flushed. Idempotent. */
  close(): Promise<void>;
}
