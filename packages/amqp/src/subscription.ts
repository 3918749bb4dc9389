import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import {
  ConnectionError,
  type Delivery,
  type Destination,
  type Envelope,
  type FerryError,
  type Logger,
  queue,
  topic,
  type TransportSubscribeOptions,
  toFerryError,
} from '@ferry/core';
import { ChannelAcks } from './acks.js';
import { describe } from './connection.js';
import type { Publisher } from './publisher.js';
import { declare, retryBucket, retryPlan, subscriptionPlan, type QueuePlan } from './topology.js';
import { fromAmqp, toAmqp } from './wire.js';

/** What a subscription needs from its transport. */
export interface SubscriptionDeps {
  readonly publisher: Publisher;
  readonly logger: Logger;
  /** Bounds a retry's republish, ms. */
  readonly publishTimeoutMs: number;
  /** Where deliveries of synthesized envelopes say they came from. */
  readonly sourceLabel: string;
  readonly onError: (error: FerryError) => void;
}

/**
 * One subscription: a channel of its own on the consuming connection (so one subscription's prefetch
 * never starves another, and a channel error stays local), `prefetch` = concurrency, manual acks after
 * the handler settled. Re-declares its topology and consumes again after every reconnect.
 */
export class AmqpSubscription {
  readonly plan: QueuePlan;
  readonly #source: Destination;
  readonly #options: TransportSubscribeOptions;
  readonly #deliver: (delivery: Delivery) => Promise<void>;
  readonly #deps: SubscriptionDeps;
  #channel: Channel | undefined;
  /** The batched acknowledgements of `#channel`. */
  #acks: ChannelAcks | undefined;
  #consumerTag: string | undefined;
  #closing = false;
  #unsettled = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #model: ChannelModel | undefined;
  #starting: Promise<void> | undefined;

  constructor(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
    deps: SubscriptionDeps,
  ) {
    this.#source = source;
    this.#options = options;
    this.#deliver = deliver;
    this.#deps = deps;
    this.plan = subscriptionPlan(source, options.group, options.id);
  }

  /** Declares the topology and starts consuming on `model`. @throws ConfigurationError on a refused declaration */
  start(model: ChannelModel): Promise<void> {
    if (this.#closing) return Promise.resolve();
    // One start per connection: a subscribe and the reconnect restore may both ask for it.
    if (this.#model === model && this.#starting !== undefined) return this.#starting;
    this.#model = model;
    const starting = this.#start(model);
    this.#starting = starting;
    starting.catch(() => {
      if (this.#starting === starting) this.#starting = undefined;
    });
    return starting;
  }

  async #start(model: ChannelModel): Promise<void> {
    await declare(model, [this.plan]);
    try {
      await this.#consume(model);
    } catch (error) {
      // amqplib's errors here mean the channel or connection went away: a ConnectionError, once, at the edge.
      throw new ConnectionError(`Cannot consume queue "${this.plan.name}": ${describe(error)}`, { cause: error });
    }
  }

  async #consume(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    this.#channel = channel;
    this.#acks?.discard();
    const acks = new ChannelAcks(channel);
    this.#acks = acks;
    channel.on('error', (error: Error) => {
      this.#deps.logger.warn({ queue: this.plan.name, error: describe(error) }, 'subscription channel error');
    });
    channel.on('close', () => {
      acks.discard();
      if (this.#channel !== channel) return;
      this.#channel = undefined;
      this.#consumerTag = undefined;
      this.#starting = undefined;
      // A channel-level failure (not a lost connection): consume again on the same connection.
      if (!this.#closing && this.#model === model) this.#scheduleRestart(model);
    });
    await channel.prefetch(this.#options.concurrency, false);
    const reply = await channel.consume(this.plan.name, (message) => this.#onMessage(channel, message), {
      noAck: false,
    });
    this.#consumerTag = reply.consumerTag;
  }

  /** True while consuming on a live channel. */
  get started(): boolean {
    return this.#consumerTag !== undefined;
  }

  /** The connection went away: its deliveries are requeued by the broker; forget the channel. */
  detach(): void {
    this.#acks?.discard();
    this.#starting = undefined;
    this.#channel = undefined;
    this.#consumerTag = undefined;
    this.#model = undefined;
    clearTimeout(this.#restartTimer);
  }

  /** Stops new deliveries; in-flight ones settle on the open channel, which closes once they are done. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    const channel = this.#channel;
    const tag = this.#consumerTag;
    if (channel !== undefined && tag !== undefined) await channel.cancel(tag).catch(() => undefined);
    if (this.#unsettled === 0) await this.#closeChannel();
  }

  /** Closes the channel now (transport close): anything unacked goes back to the queue. */
  async #closeChannel(): Promise<void> {
    const channel = this.#channel;
    // Acknowledgements still waiting for their flush go out before the channel closes.
    if (channel !== undefined) this.#acksOf(channel)?.flush();
    this.#channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  /** Starts again on `model` after a pause (a failed restore after a reconnect, a lost channel). */
  restartLater(model: ChannelModel): void {
    this.#model = model;
    this.#scheduleRestart(model);
  }

  #scheduleRestart(model: ChannelModel): void {
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (this.#closing || this.#model !== model) return;
      this.start(model).catch((error: unknown) => {
        this.#deps.onError(toFerryError(error));
        this.#scheduleRestart(model);
      });
    }, 1_000);
    this.#restartTimer.unref();
  }

  #onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted, node down): re-declare and consume again.
      this.#deps.onError(
        new ConnectionError(
          `RabbitMQ cancelled the consumer of queue "${this.plan.name}" (queue deleted?); declaring it again and consuming`,
        ),
      );
      if (this.#channel === channel) {
        this.#channel = undefined;
        this.#consumerTag = undefined;
        this.#starting = undefined;
        void channel.close().catch(() => undefined);
      }
      if (this.#model !== undefined) this.#scheduleRestart(this.#model);
      return;
    }
    if (this.#closing) {
      // Arrived after close(): give it back untouched for the next consumer.
      channel.nack(message, false, true);
      return;
    }
    const acks = this.#acksOf(channel);
    acks?.received(message);
    this.#unsettled++;
    let settled = false;
    const settle = (action: () => void): Promise<void> => {
      if (settled) return Promise.resolve();
      settled = true;
      this.#unsettled--;
      // Never ack on another channel (406 "unknown delivery tag"): a stale delivery was already requeued.
      if (this.#channel === channel) action();
      if (this.#closing && this.#unsettled === 0) void this.#closeChannel();
      return Promise.resolve();
    };
    const { envelope, error } = fromAmqp(message, this.#deps.sourceLabel);
    const destination: Destination =
      this.#source.kind === 'queue' ? this.#source : topicOrSource(this.#source, message.fields.routingKey);
    const rawCount = (message.properties.headers as Record<string, unknown> | undefined)?.['x-delivery-count'];
    const delivery: Delivery = {
      envelope,
      destination,
      redelivered: message.fields.redelivered,
      ...(typeof rawCount === 'number' ? { deliveryCount: rawCount + 1 } : {}),
      ...(error === undefined ? {} : { error }),
      ack: () => settle(() => acks?.ack(message)),
      release: () => settle(() => acks?.nack(message, true)),
      retry: async (next: Envelope, delayMs: number) => {
        if (settled) return;
        await this.#republish(next, delayMs);
        await settle(() => acks?.ack(message));
      },
    };
    void this.#deliver(delivery).catch((failure: unknown) => {
      this.#deps.onError(toFerryError(failure));
      void settle(() => acks?.nack(message, true));
    });
  }

  /** The acknowledgements of `channel` while it is this subscription's channel. */
  #acksOf(channel: Channel): ChannelAcks | undefined {
    return this.#channel === channel ? this.#acks : undefined;
  }

  /** Publishes the retry copy to this subscription's own queue, through a delay queue when `delayMs` > 0. */
  async #republish(envelope: Envelope, delayMs: number): Promise<void> {
    const target = this.plan.name;
    const durable = this.plan.options.durable !== false;
    const { content, options } = toAmqp(envelope, this.#wireShape(), durable, true);
    const signal = AbortSignal.timeout(this.#deps.publishTimeoutMs);
    if (delayMs <= 0) {
      await this.#deps.publisher.send('', target, content, options, signal);
      return;
    }
    const plan = retryPlan(target, retryBucket(delayMs));
    // Re-declared on every retry: that keeps an idle delay queue's x-expires from deleting it under a message.
    await this.#deps.publisher.ensure([plan], signal, true);
    await this.#deps.publisher.send('', plan.name, content, options, signal);
  }

  /** The destination whose content mode the copies keep. */
  #wireShape(): Destination {
    if (this.#source.kind === 'queue') return this.#source;
    const mode = this.#source.options.contentMode;
    return queue(this.plan.name, mode === undefined ? {} : { contentMode: mode });
  }
}

function topicOrSource(source: Destination, routingKey: string): Destination {
  try {
    return topic(routingKey, source.options);
  } catch {
    return source; // a foreign routing key Ferry's names cannot express (fanout '' or a headers exchange)
  }
}
