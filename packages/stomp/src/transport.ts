import {
  ClosedError,
  ConnectionError,
  DEFAULT_PUBLISH_TIMEOUT,
  type Delivery,
  type Destination,
  Emitter,
  type Envelope,
  type FerryError,
  type HealthStatus,
  LinkState,
  abortable,
  type Transport,
  type TransportContext,
  type TransportEvents,
  type TransportPublishOptions,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@ferry/core';
import { ManagedConnection } from './connection.js';
import { resolveSettings, STOMP_CAPABILITIES, type StompConnectOptions, type StompSettings } from './options.js';
import { Publisher } from './publisher.js';
import { StompSubscription } from './subscription.js';
import { isDurable, RABBITMQ } from './topology.js';
import { toFrame } from './wire.js';

/** A destination's STOMP target and queue-declaring headers. */
interface Route {
  readonly target: string;
  readonly declare: Readonly<Record<string, string>>;
  readonly durable: boolean;
}

/**
 * The STOMP 1.2 transport (RabbitMQ's STOMP plugin). One connection publishes (a memory alarm blocks it,
 * never the acks); each subscription has a connection of its own (see `StompSubscription` in
 * `src/subscription.ts`). After a reconnect every subscription is re-issued before waiting publishes go out.
 */
export class StompTransport extends Emitter<TransportEvents> implements Transport {
  readonly name = 'stomp';
  readonly capabilities = STOMP_CAPABILITIES;
  readonly #publishing: ManagedConnection;
  readonly #context: TransportContext;
  readonly #settings: StompSettings;
  readonly #publisher: Publisher;
  readonly #subscriptions = new Set<StompSubscription>();
  readonly #routes = new WeakMap<Destination, Route>();
  readonly #publishTimeoutMs: number;
  readonly #sourceLabel: string;
  readonly #link: LinkState;

  /** Made by {@link createTransport}, which `connect()` calls. @internal */
  constructor(context: TransportContext, settings: StompSettings, publishing: ManagedConnection) {
    super();
    this.#link = new LinkState('STOMP connection', {
      disconnected: (error) => this.emit('disconnected', error),
      connected: () => this.emit('connected'),
    });
    this.#context = context;
    this.#settings = settings;
    this.#publishing = publishing;
    const timeout = context.options['publishTimeout'];
    this.#publishTimeoutMs = typeof timeout === 'number' ? timeout : DEFAULT_PUBLISH_TIMEOUT;
    this.#sourceLabel = context.redactor.url(`${context.url.protocol}//${context.url.host}`);
    this.#publisher = new Publisher(publishing, this.#link);
    this.#watch(publishing);
    publishing.on('up', () => this.#maybeUp());
  }

  #watch(connection: ManagedConnection): void {
    connection.on('down', (error) => this.#down(error));
    connection.on('reconnecting', (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs));
    connection.on('brokerError', (error) => this.emit('error', error));
  }

  status(): {
    /** `up`, `reconnecting` (a connection lost) or `down` (closed). */
    status: HealthStatus;
  } {
    return { status: this.#link.status };
  }

  async publish(destination: Destination, envelope: Envelope, options: TransportPublishOptions): Promise<void> {
    if (this.#link.status === 'down') throw new ClosedError('STOMP connection');
    const route = this.#route(destination);
    const { headers, body } = toFrame(envelope, destination, route.durable);
    await this.#publisher.send(route.target, Object.assign({}, route.declare, headers), body, options.signal);
  }

  /** Where a destination publishes and the headers that declare its queue: computed once per destination object. */
  #route(destination: Destination): Route {
    let route = this.#routes.get(destination);
    if (route === undefined) {
      route = {
        target: RABBITMQ.publishTarget(destination),
        declare: RABBITMQ.declareHeaders(destination),
        durable: isDurable(destination),
      };
      this.#routes.set(destination, route);
    }
    return route;
  }

  async subscribe(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
  ): Promise<TransportSubscription> {
    if (this.#link.status === 'down') throw new ClosedError('STOMP connection');
    const { logger, redactor, reconnect } = this.#context;
    const connection = new ManagedConnection('consume', this.#settings, reconnect, logger, redactor);
    const subscription = new StompSubscription(connection, source, options, deliver, {
      publisher: this.#publisher,
      publishTimeoutMs: this.#publishTimeoutMs,
      sourceLabel: this.#sourceLabel,
      onError: (error) => this.emit('error', error),
    });
    const signal = AbortSignal.timeout(this.#publishTimeoutMs);
    try {
      await this.#link.whenUp(signal);
      await abortable(connection.open(), signal);
      this.#watch(connection);
      connection.maxErrorClosures = 3;
      connection.on('up', () => this.#maybeUp());
      connection.on('failed', (error) => {
        // Refused again and again (e.g. the queue exists with other arguments): this subscription is over.
        this.#subscriptions.delete(subscription);
        this.emit('error', error);
        this.#maybeUp();
      });
      connection.on('brokerError', (error) => {
        // RabbitMQ cancels a subscription whose queue was deleted but keeps the connection: start over,
        // which declares the queue again.
        if (/cancel/i.test(error.message)) connection.destroySocket();
      });
      this.#subscriptions.add(subscription);
      await abortable(subscription.start(connection.session!), signal);
    } catch (error) {
      this.#subscriptions.delete(subscription);
      await subscription.shutdownNow();
      if (signal.aborted && error === signal.reason) {
        throw new ConnectionError(
          `Could not subscribe to ${subscription.plan.destination} within ${this.#publishTimeoutMs} ms: the broker is unreachable`,
          { cause: error },
        );
      }
      throw error;
    }
    return {
      close: async () => {
        this.#subscriptions.delete(subscription);
        await subscription.close();
        this.#maybeUp();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#link.status === 'down') return;
    this.#link.close();
    await Promise.all([...this.#subscriptions].map((s) => s.shutdownNow()));
    this.#subscriptions.clear();
    await this.#publishing.close();
  }

  #down(error: FerryError): void {
    this.#link.down(error);
  }

  #maybeUp(): void {
    if (this.#publishing.session === undefined) return;
    // A subscription not subscribed again yet: resume it, and look again once it is.
    this.#link.upWhenReady(this.#subscriptions, () => this.#maybeUp());
  }
}

/** The factory `connect('stomp://…')` uses. */
export async function createTransport(context: TransportContext): Promise<Transport> {
  const settings = resolveSettings(
    context.url,
    context.options['stomp'] as StompConnectOptions | undefined,
    context.connectionName,
  );
  const publishing = new ManagedConnection('publish', settings, context.reconnect, context.logger, context.redactor);
  await publishing.open();
  return new StompTransport(context, settings, publishing);
}
