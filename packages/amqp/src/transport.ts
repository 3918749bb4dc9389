import {
  ClosedError,
  ConnectionError,
  type FerryError,
  type Destination,
  Emitter,
  type Envelope,
  type HealthStatus,
  LinkState,
  type Logger,
  type Transport,
  type TransportContext,
  type TransportEvents,
  type TransportPublishOptions,
  type TransportSubscribeOptions,
  type TransportSubscription,
  abortable,
  type Delivery,
  toFerryError,
  DEFAULT_PUBLISH_TIMEOUT,
} from '@ferry/core';
import { ManagedConnection } from './connection.js';
import { AMQP_CAPABILITIES, type AmqpConnectOptions, resolveSettings } from './options.js';
import { Publisher } from './publisher.js';
import { AmqpSubscription } from './subscription.js';
import {
  DEFAULT_TOPIC_EXCHANGE,
  type ExchangePlan,
  publishTarget,
  type QueuePlan,
  queuePlan,
  topicExchange,
} from './topology.js';

interface Route {
  readonly exchange: string;
  readonly routingKey: string;
  readonly plans: ReadonlyArray<QueuePlan | ExchangePlan>;
}
import { toAmqp } from './wire.js';

/**
 * The AMQP 0-9-1 transport (RabbitMQ). Two connections, as RabbitMQ advises: one publishes (a memory
 * alarm blocks it, never the acks), one consumes. After a reconnect the consuming side re-declares its
 * topology and consumes again before the publishing side lets buffered publishes go out.
 */
export class AmqpTransport extends Emitter<TransportEvents> implements Transport {
  readonly name = 'amqp';
  readonly capabilities = AMQP_CAPABILITIES;
  readonly #publishing: ManagedConnection;
  readonly #consuming: ManagedConnection;
  readonly #publisher: Publisher;
  readonly #subscriptions = new Set<AmqpSubscription>();
  /** Publish routes by destination object (destinations are frozen, and usually reused). */
  readonly #routes = new WeakMap<Destination, Route>();
  readonly #logger: Logger;
  readonly #publishTimeoutMs: number;
  readonly #sourceLabel: string;
  readonly #link: LinkState;
  #restoring = false;

  /** Made by {@link createTransport}, which `connect()` calls. @internal */
  constructor(context: TransportContext, publishing: ManagedConnection, consuming: ManagedConnection) {
    super();
    this.#link = new LinkState('AMQP connection', {
      disconnected: (error) => this.emit('disconnected', error),
      connected: () => this.emit('connected'),
    });
    this.#publishing = publishing;
    this.#consuming = consuming;
    this.#logger = context.logger;
    const timeout = context.options['publishTimeout'];
    this.#publishTimeoutMs = typeof timeout === 'number' ? timeout : DEFAULT_PUBLISH_TIMEOUT;
    this.#sourceLabel = context.redactor.url(`${context.url.protocol}//${context.url.host}${context.url.pathname}`);
    this.#publisher = new Publisher(publishing, this.#link);
    for (const connection of [publishing, consuming]) {
      connection.on('down', (error) => this.#down(error));
      connection.on('reconnecting', (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs));
      connection.on('blocked', (reason) => this.emit('blocked', reason));
      connection.on('unblocked', () => {
        if (!this.#publishing.blocked && !this.#consuming.blocked) this.emit('unblocked');
      });
    }
    publishing.on('up', () => this.#maybeUp());
    consuming.on('up', (model) => {
      this.#restoring = true;
      void Promise.all(
        [...this.#subscriptions].map((s) =>
          s.start(model).catch((error: unknown) => {
            // Reported, and tried again every second on this connection until it works or is closed.
            this.emit('error', toFerryError(error));
            s.restartLater(model);
          }),
        ),
      ).finally(() => {
        this.#restoring = false;
        this.#maybeUp();
      });
    });
  }

  status(): {
    /** `up`, `reconnecting` (either connection lost) or `down` (closed). */
    status: HealthStatus;
    /** `blocked`: a RabbitMQ memory or disk alarm blocks publishing. */
    details: Record<string, boolean>;
  } {
    return {
      status: this.#link.status,
      details: { blocked: this.#publishing.blocked || this.#consuming.blocked },
    };
  }

  async publish(destination: Destination, envelope: Envelope, options: TransportPublishOptions): Promise<void> {
    if (this.#link.status === 'down') throw new ClosedError('AMQP connection');
    const { exchange, routingKey, plans } = this.#route(destination);
    const durable = destination.kind === 'queue' ? destination.options.durable !== false : true;
    const mandatory = destination.kind === 'queue' ? true : options.mandatory;
    const { content, options: properties } = toAmqp(envelope, destination, durable, mandatory);
    await this.#publisher.send(exchange, routingKey, content, properties, options.signal, plans);
  }

  /** Where a destination publishes and what it needs declared: computed once per destination object. */
  #route(destination: Destination): Route {
    let route = this.#routes.get(destination);
    if (route === undefined) {
      const { exchange, routingKey } = publishTarget(destination);
      const plans =
        destination.kind === 'queue'
          ? [queuePlan(destination)]
          : exchange === DEFAULT_TOPIC_EXCHANGE
            ? []
            : [topicExchange(destination)];
      route = { exchange, routingKey, plans };
      this.#routes.set(destination, route);
    }
    return route;
  }

  async subscribe(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
  ): Promise<TransportSubscription> {
    if (this.#link.status === 'down') throw new ClosedError('AMQP connection');
    const subscription = new AmqpSubscription(source, options, deliver, {
      publisher: this.#publisher,
      logger: this.#logger,
      publishTimeoutMs: this.#publishTimeoutMs,
      sourceLabel: this.#sourceLabel,
      onError: (error) => this.emit('error', error),
    });
    // Registered first, so that a reconnect while it starts restores it too.
    this.#subscriptions.add(subscription);
    const signal = AbortSignal.timeout(this.#publishTimeoutMs);
    try {
      for (;;) {
        await this.#link.whenUp(signal);
        const model = this.#consuming.model;
        try {
          if (model === undefined) throw new ConnectionError('AMQP consume connection lost');
          await subscription.start(model);
          break;
        } catch (error) {
          // A connection lost meanwhile: the restore after the reconnect starts it; wait for that.
          // A refused declaration (406, 404, 403) is final: say so now, never retry it in a loop.
          if (!(error instanceof ConnectionError)) throw error;
          await abortable(new Promise((resolve) => setTimeout(resolve, 50)), signal);
          if (subscription.started) break;
        }
      }
    } catch (error) {
      this.#subscriptions.delete(subscription);
      await subscription.close();
      if (signal.aborted && error === signal.reason) {
        throw new ConnectionError(
          `Could not subscribe to ${subscription.plan.name} within ${this.#publishTimeoutMs} ms: RabbitMQ is unreachable`,
          { cause: error },
        );
      }
      throw error;
    }
    return {
      close: async () => {
        this.#subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#link.status === 'down') return;
    this.#link.close();
    await Promise.all([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    await this.#publisher.close();
    await Promise.all([this.#publishing.close(), this.#consuming.close()]);
  }

  #down(error: FerryError): void {
    if (this.#link.status === 'down') return;
    for (const s of this.#subscriptions) if (this.#consuming.model === undefined) s.detach();
    this.#link.down(error);
  }

  #maybeUp(): void {
    if (this.#restoring) return;
    if (this.#publishing.model === undefined || this.#consuming.model === undefined) return;
    this.#link.up();
  }
}

/** The factory `connect('amqp://…')` uses. */
export async function createTransport(context: TransportContext): Promise<Transport> {
  const settings = resolveSettings(
    context.url,
    context.options['amqp'] as AmqpConnectOptions | undefined,
    context.connectionName,
  );
  const publishing = new ManagedConnection('publish', settings, context.reconnect, context.logger, context.redactor);
  const consuming = new ManagedConnection('consume', settings, context.reconnect, context.logger, context.redactor);
  await publishing.open();
  try {
    await consuming.open();
  } catch (error) {
    await publishing.close();
    throw error;
  }
  return new AmqpTransport(context, publishing, consuming);
}
