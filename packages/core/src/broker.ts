import type { Capabilities, Health, HealthStatus } from './capabilities.js';
import type { CodecRegistry } from './codec.js';
import { FerryConsumer, type Consumer } from './consumer.js';
import { Emitter } from './emitter.js';
import { ClosedError, ErrorCode, type FerryError, toFerryError } from './errors.js';
import type { Logger } from './logger.js';
import { traceConsume, tracePublish } from './middleware/tracing.js';
import type { ConnectOptions, ConsumerOptions, ProducerOptions } from './options.js';
import { DEFAULT_PUBLISH_TIMEOUT, positiveInteger } from './options.js';
import { FerryProducer, type Producer } from './producer.js';
import type { Redactor } from './redact.js';
import type { Transport } from './transport.js';

/** Events of a {@link Broker}. Errors are redacted: they never carry credentials. */
export interface BrokerEvents {
  [event: string]: (...args: never[]) => void;
  /** Connected again after an outage; subscriptions resumed. */
  connected: () => void;
  /** The connection was lost; publishes wait (up to `publishTimeout`) and consumers resume after reconnecting. */
  disconnected: (error: FerryError) => void;
  /** Reconnect attempt `attempt` in `delayMs`. */
  reconnecting: (attempt: number, delayMs: number) => void;
  /** A failure that does not change the connection state (e.g. a message that could not be settled). */
  error: (error: FerryError) => void;
  /**
   * The broker stopped accepting publishes (e.g. a RabbitMQ memory or disk alarm): publishes wait up to
   * `publishTimeout`; consumers keep going. `health().details.blocked` is `true` until `unblocked`.
   */
  blocked: (reason: string) => void;
  /** Publishing is accepted again. */
  unblocked: () => void;
}

/** A connection to a broker, made by `connect(url)`. */
export interface Broker {
  /** `memory`, `amqp`, `mqtt` or `stomp`. */
  readonly transport: string;
  /** What this transport really guarantees on this broker. */
  readonly capabilities: Capabilities;
  /** A new producer. @throws ClosedError after `close()` */
  producer(options?: ProducerOptions): Producer;
  /** A new consumer. @throws ClosedError after `close()` */
  consumer(options?: ConsumerOptions): Consumer;
  /** Connection state now. Never contains credentials. */
  health(): Health;
  /** Adds a listener for a {@link BrokerEvents} event (errors are redacted). Returns the broker, for chaining. */
  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  /** Removes a listener added with `on`. */
  off<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  /** Drains consumers, flushes producers, closes the connection. Idempotent; later calls get `ClosedError`. */
  close(): Promise<void>;
}

/** Settings a broker resolved from `connect()`. @internal */
export interface BrokerSettings {
  readonly url: string;
  readonly options: ConnectOptions;
  readonly redactor: Redactor;
  readonly logger: Logger;
  readonly source: string;
  readonly maxMessageBytes: number;
  readonly codecs: CodecRegistry;
}

/** The broker core builds on any transport. @internal */
export class FerryBroker extends Emitter<BrokerEvents> implements Broker {
  readonly transport: string;
  readonly capabilities: Capabilities;
  readonly #transport: Transport;
  readonly #settings: BrokerSettings;
  readonly #codecs: CodecRegistry;
  readonly #producers = new Set<FerryProducer>();
  readonly #consumers = new Set<FerryConsumer>();
  #status: HealthStatus = 'up';
  #since = new Date().toISOString();
  #lastError: FerryError | undefined;
  #closing: Promise<void> | undefined;

  constructor(transport: Transport, settings: BrokerSettings) {
    super();
    this.#transport = transport;
    this.#settings = settings;
    this.transport = transport.name;
    this.capabilities = Object.freeze({ ...transport.capabilities });
    this.#codecs = settings.codecs;
    const { redactor, logger } = settings;
    transport.on('connected', () => {
      this.#setStatus('up');
      logger.info({ transport: this.transport }, 'connected');
      this.emit('connected');
    });
    transport.on('disconnected', (error: FerryError) => {
      const clean = redactor.error(error) as FerryError;
      this.#lastError = clean;
      this.#setStatus('reconnecting');
      logger.warn({ transport: this.transport, code: clean.code, error: clean.message }, 'disconnected');
      this.emit('disconnected', clean);
    });
    transport.on('reconnecting', (attempt: number, delayMs: number) => {
      this.#setStatus('reconnecting');
      logger.info({ transport: this.transport, attempt, delayMs }, 'reconnecting');
      this.emit('reconnecting', attempt, delayMs);
    });
    transport.on('error', (error: FerryError) => this.#reportError(error));
    transport.on('blocked', (reason: string) => {
      logger.warn({ transport: this.transport, reason }, 'blocked: the broker refuses publishes for now');
      this.emit('blocked', reason);
    });
    transport.on('unblocked', () => {
      logger.info({ transport: this.transport }, 'unblocked');
      this.emit('unblocked');
    });
  }

  producer(options: ProducerOptions = {}): Producer {
    if (this.#closing !== undefined) throw new ClosedError('Broker');
    const { options: connect, redactor, source, maxMessageBytes } = this.#settings;
    const producer = new FerryProducer({
      transport: this.#transport,
      codecs: this.#codecs,
      redactor,
      source,
      publishTimeout: positiveInteger(
        options.publishTimeout ?? connect.publishTimeout,
        'publishTimeout',
        DEFAULT_PUBLISH_TIMEOUT,
      ),
      maxMessageBytes,
      maxPendingPublishes: positiveInteger(options.maxPendingPublishes, 'maxPendingPublishes', 10_000),
      middleware: [tracePublish, ...(connect.middleware?.publish ?? []), ...(options.middleware ?? [])],
    });
    this.#producers.add(producer);
    return producer;
  }

  consumer(options: ConsumerOptions = {}): Consumer {
    if (this.#closing !== undefined) throw new ClosedError('Broker');
    const { options: connect, redactor, logger, maxMessageBytes } = this.#settings;
    const consumer = new FerryConsumer({
      transport: this.#transport,
      codecs: this.#codecs,
      logger,
      redactor,
      middleware: [traceConsume, ...(connect.middleware?.consume ?? []), ...(options.middleware ?? [])],
      retry: [connect.retry, options.retry],
      maxMessageBytes,
      publishTimeout: positiveInteger(connect.publishTimeout, 'publishTimeout', DEFAULT_PUBLISH_TIMEOUT),
      closeTimeoutMs: positiveInteger(options.closeTimeoutMs, 'closeTimeoutMs', 30_000),
      onError: (error) => this.#reportError(error),
    });
    this.#consumers.add(consumer);
    return consumer;
  }

  health(): Health {
    const state = this.#closing === undefined ? this.#transport.status() : { status: 'down' as const };
    if (state.status !== this.#status && this.#closing === undefined) this.#setStatus(state.status);
    const error = this.#lastError;
    return {
      status: this.#closing === undefined ? state.status : 'down',
      transport: this.transport,
      url: this.#settings.redactor.url(this.#settings.url),
      since: this.#since,
      ...(error === undefined ? {} : { lastError: { code: error.code, message: error.message } }),
      ...('details' in state && state.details !== undefined ? { details: state.details } : {}),
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#consumers].map((c) => c.close()));
    await Promise.allSettled([...this.#producers].map((p) => p.close()));
    try {
      await this.#transport.close();
    } catch (error) {
      this.#reportError(toFerryError(error, ErrorCode.CONNECTION));
    }
    this.#setStatus('down');
    this.#settings.logger.info({ transport: this.transport }, 'closed');
  }

  #setStatus(status: HealthStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    this.#since = new Date().toISOString();
  }

  #reportError(error: FerryError): void {
    const clean = this.#settings.redactor.error(error) as FerryError;
    this.#settings.logger.error({ transport: this.transport, code: clean.code, error: clean.message }, 'error');
    this.emit('error', clean);
  }
}
