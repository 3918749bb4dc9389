import type { IMessage } from '@stomp/stompjs';
import {
  ConfigurationError,
  ErrorCode,
  FerryError,
  type Delivery,
  type Destination,
  type Envelope,
  delayBucket,
  queue,
  topic,
  toFerryError,
  type TransportSubscribeOptions,
} from '@ferry/core';
import type { ManagedConnection, Session } from './connection.js';
import { GUARD_MAX_BODY_BYTES, OVERSIZE_HEADER } from './frame-guard.js';
import type { Publisher } from './publisher.js';
import { RABBITMQ, type SubscriptionPlan } from './topology.js';
import { fromFrame, toFrame } from './wire.js';

/** What a subscription needs from its transport. */
export interface SubscriptionDeps {
  readonly publisher: Publisher;
  readonly publishTimeoutMs: number;
  readonly sourceLabel: string;
  readonly onError: (error: FerryError) => void;
}

/**
 * One SUBSCRIBE (`ack: client-individual`, `prefetch-count` = concurrency) on a connection of its own.
 *
 * Why its own connection: RabbitMQ's STOMP plugin refuses an ACK or NACK after UNSUBSCRIBE ("Subscription
 * not found") and keeps such a message unacknowledged until the connection closes. So a subscription
 * that closes stops handing messages to core, lets the in-flight ones settle on its open connection,
 * then closes that connection: RabbitMQ requeues whatever it had sent ahead, and nothing is stranded.
 */
export class StompSubscription {
  readonly plan: SubscriptionPlan;
  readonly connection: ManagedConnection;
  readonly #source: Destination;
  readonly #deliver: (delivery: Delivery) => Promise<void>;
  readonly #deps: SubscriptionDeps;
  #session: Session | undefined;
  #started: Promise<void> | undefined;
  #starts = 0;
  #closing = false;
  #unsettled = 0;
  #closed: Promise<void> | undefined;

  constructor(
    connection: ManagedConnection,
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
    deps: SubscriptionDeps,
  ) {
    this.connection = connection;
    this.#source = source;
    this.#deliver = deliver;
    this.#deps = deps;
    this.plan = RABBITMQ.subscription(source, options.group, options.id, options.concurrency);
    connection.on('up', (session) => {
      // A refusal after a reconnect is an `error` event (and counts towards the connection's give-up).
      this.start(session).catch((error: unknown) => deps.onError(toFerryError(error)));
    });
  }

  /** Subscribes on the live session (see {@link start}); `undefined` while there is none. */
  resume(): Promise<void> | undefined {
    const session = this.connection.session;
    return session === undefined ? undefined : this.start(session);
  }

  /** True once SUBSCRIBEd on the live session and RabbitMQ answered. */
  get ready(): boolean {
    return this.#session !== undefined && this.#session === this.connection.session && this.#subscribed;
  }
  #subscribed = false;

  /**
   * SUBSCRIBEs on `session` (once per session) with a `receipt` header: resolves on the RECEIPT, once
   * RabbitMQ declared and bound the queue, so a publish made afterwards reaches it.
   */
  start(session: Session): Promise<void> {
    if (this.#closing) return Promise.resolve();
    if (this.#session === session && this.#started !== undefined) return this.#started;
    this.#session = session;
    this.#subscribed = false;
    const receipt = `ferry-sub-${this.plan.headers['id']}-${++this.#starts}`;
    const started = new Promise<void>((resolve, reject) => {
      // This connection carries only this subscription: an ERROR before the RECEIPT is about this
      // SUBSCRIBE (RabbitMQ may even send the RECEIPT after its ERROR).
      const refused = (error: FerryError): void => {
        this.connection.off('brokerError', refused);
        reject(
          new ConfigurationError(
            `RabbitMQ refused SUBSCRIBE ${this.plan.destination}: ${error.message.replace(/^STOMP broker ERROR: /, '')}`,
            { cause: error },
          ),
        );
      };
      this.connection.on('brokerError', refused);
      session.client.watchForReceipt(receipt, () => {
        this.connection.off('brokerError', refused);
        if (this.#session === session) this.#subscribed = true;
        resolve();
      });
    });
    this.#started = started;
    session.client.subscribe(this.plan.destination, (message) => this.#onMessage(session, message), {
      ...this.plan.headers,
      receipt,
    });
    return started;
  }

  /**
   * Stops handing messages to core at once; resolves then. The connection closes once every delivery
   * core holds has settled (or when the transport closes), which requeues anything sent ahead.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      if (this.#unsettled === 0) void this.#shutdown();
    }
    return Promise.resolve();
  }

  /** Closes the connection now (transport close): anything unacknowledged goes back to the queue. */
  shutdownNow(): Promise<void> {
    this.#closing = true;
    return this.#shutdown();
  }

  #shutdown(): Promise<void> {
    this.#closed ??= this.connection.close();
    return this.#closed;
  }

  #onMessage(session: Session, message: IMessage): void {
    if (this.#closing) return; // held unacknowledged: the connection's close requeues it
    this.#unsettled++;
    let settled = false;
    const settle = (action: () => void): Promise<void> => {
      if (settled) return Promise.resolve();
      settled = true;
      this.#unsettled--;
      // Never acknowledge on another session: RabbitMQ requeued the message when the old one died.
      if (this.#session === session && session.client.connected) {
        try {
          action();
        } catch {
          // the session closed meanwhile: the broker requeues the message
        }
      }
      if (this.#closing && this.#unsettled === 0) void this.#shutdown();
      return Promise.resolve();
    };
    const { envelope, error: decodeError } = fromFrame(message, this.#deps.sourceLabel);
    const oversize = message.headers[OVERSIZE_HEADER];
    const error =
      oversize === undefined
        ? decodeError
        : new FerryError(
            ErrorCode.MESSAGE_TOO_LARGE,
            `Received a message body of ${oversize} bytes: more than the STOMP client can hold (${GUARD_MAX_BODY_BYTES}); its body was not read, the dead letter keeps its headers`,
          );
    const delivery: Delivery = {
      envelope,
      destination: this.#destinationOf(message.headers['destination']),
      redelivered: message.headers['redelivered'] === 'true',
      ...deliveryCount(message.headers['x-delivery-count']),
      ...(error === undefined ? {} : { error }),
      ack: () => settle(() => message.ack()),
      release: () => settle(() => message.nack()),
      retry: async (next: Envelope, delayMs: number) => {
        if (settled) return;
        await this.#republish(next, delayMs);
        await settle(() => message.ack());
      },
    };
    void this.#deliver(delivery).catch((failure: unknown) => {
      this.#deps.onError(toFerryError(failure));
      void settle(() => message.nack());
    });
  }

  /** The queue, or the topic with the concrete key the message was published to. */
  #destinationOf(header: string | undefined): Destination {
    if (this.#source.kind === 'queue' || header === undefined || !header.startsWith('/topic/')) return this.#source;
    try {
      return topic(header.slice('/topic/'.length), this.#source.options);
    } catch {
      return this.#source;
    }
  }

  /** The retry copy goes to this subscription's own queue: at once, or through a delay queue. */
  async #republish(envelope: Envelope, delayMs: number): Promise<void> {
    const bucket = delayMs > 0 ? delayBucket(delayMs) : 0;
    const target = RABBITMQ.retryTarget(this.plan.queueName, bucket);
    const mode = this.#source.options.contentMode;
    const shape = queue(this.plan.queueName, mode === undefined ? {} : { contentMode: mode });
    const { headers, body } = toFrame(envelope, shape, this.plan.durable);
    const signal = AbortSignal.timeout(this.#deps.publishTimeoutMs);
    await this.#deps.publisher.send(target.destination, { ...headers, ...target.headers }, body, signal);
  }
}

/** Quorum queues count deliveries (`x-delivery-count`: earlier deliveries); Ferry counts this one too. */
function deliveryCount(header: string | undefined): { deliveryCount?: number } {
  const count = Number(header);
  return header !== undefined && Number.isInteger(count) && count >= 0 ? { deliveryCount: count + 1 } : {};
}
