import type { IPublishPacket, MqttClient } from 'mqtt';
import {
  type Delivery,
  type Destination,
  type Envelope,
  type FerryError,
  toFerryError,
  type TransportSubscribeOptions,
} from '@ferry/core';
import type { ManagedConnection, Session } from './connection.js';
import type { Publisher } from './publisher.js';
import { destinationOf, type SubscriptionPlan } from './topics.js';
import { fromWire } from './wire.js';
import { type Held, takeOverAcks, writePuback } from './acks.js';
import type { Departure } from './sessions.js';
import { forwardedCopy, retryCopy, subscribeFilters, unsubscribe } from './copies.js';

/** What a subscription needs from its transport. */
export interface SubscriptionDeps {
  readonly publisher: Publisher;
  readonly publishTimeoutMs: number;
  readonly sourceLabel: string;
  readonly protocolVersion: 4 | 5;
  readonly onError: (error: FerryError) => void;
}

/** A hand-off ends once nothing arrived for this long, ms. */
const HAND_OFF_QUIET_MS = 150;

/**
 * One subscription on a connection (and, for a queue or group, a persistent session) of its own.
 *
 * Acknowledgement after the handler: mqtt.js sends the PUBACK of a QoS 1 message as soon as its
 * `handleMessage` hook calls back, and reads no further packet until then — holding that callback would
 * serialize the connection and starve keep-alive. So the hook calls back at once and the PUBACK that
 * mqtt.js then sends is held back (its `_sendPacket` is wrapped) until core settles the delivery. The
 * broker's window of unacknowledged messages is the prefetch (MQTT 5 Receive Maximum, set from
 * `concurrency`); Ferry hands core at most `concurrency` at a time, in arrival order.
 */
export class MqttSubscription {
  readonly plan: SubscriptionPlan;
  readonly connection: ManagedConnection;
  readonly #source: Destination;
  readonly #concurrency: number;
  readonly #deliver: (delivery: Delivery) => Promise<void>;
  readonly #deps: SubscriptionDeps;
  #session: Session | undefined;
  #started: Promise<void> | undefined;
  #subscribed = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** Messages received, not yet handed to core. */
  readonly #waiting: Array<{ client: MqttClient; packet: IPublishPacket }> = [];
  /** The newest mqtt.js client of the connection: only its messages are handled and acknowledged. */
  #client: MqttClient | undefined;
  /** Handed to core, not settled. */
  #active = 0;
  /** Waiting out a retry delay (PUBACK held, concurrency slot free). */
  readonly #delayed = new Set<() => void>();

  constructor(
    connection: ManagedConnection,
    source: Destination,
    plan: SubscriptionPlan,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
    deps: SubscriptionDeps,
  ) {
    this.connection = connection;
    this.#source = source;
    this.plan = plan;
    this.#concurrency = options.concurrency;
    this.#deliver = deliver;
    this.#deps = deps;
    connection.onClient = (client) => this.#hook(client);
    connection.on('up', (session) => {
      this.start(session).catch((error: unknown) => deps.onError(toFerryError(error)));
    });
  }

  /** Subscribes on the live session (see {@link start}); `undefined` while there is none. */
  resume(): Promise<void> | undefined {
    const session = this.connection.session;
    return session === undefined ? undefined : this.start(session);
  }

  /** True once SUBSCRIBEd on the live session and the broker answered. */
  get ready(): boolean {
    return this.#session !== undefined && this.#session === this.connection.session && this.#subscribed;
  }

  /** SUBSCRIBEs on `session` (once per session, QoS 1); resolves on the SUBACK. @throws ConfigurationError if refused */
  start(session: Session): Promise<void> {
    if (this.#closing) return Promise.resolve();
    if (this.#session === session && this.#started !== undefined) return this.#started;
    this.#session = session;
    this.#subscribed = false;
    const started = subscribeFilters(session, this.plan).then(() => {
      if (this.#session === session) this.#subscribed = true;
    });
    this.#started = started;
    return started;
  }

  /** Installs the PUBACK hook on a new client, before it connects. */
  #hook(client: MqttClient): void {
    this.#client = client;
    takeOverAcks(client, (packet) => this.#onMessage(client, packet));
  }

  #puback(held: Held | undefined): void {
    if (held === undefined) return;
    // Never on another session: the broker re-sends the message on the new one (DUP).
    if (held.client !== this.#client || !held.client.connected) return;
    writePuback(held);
  }

  #onMessage(client: MqttClient, packet: IPublishPacket): void {
    if (this.#closing && this.#departure === 'hand-off') {
      this.#forward(client, packet);
      return;
    }
    this.#waiting.push({ client, packet });
    this.#pump();
  }

  #pump(): void {
    while (!this.#closing && this.#active < this.#concurrency && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      if (next.client !== this.#client) continue; // the broker sends it again on the new session
      this.#active++;
      this.#handOver(next.client, next.packet);
    }
    this.#idle?.();
  }

  #handOver(client: MqttClient, packet: IPublishPacket): void {
    const held: Held | undefined =
      packet.qos > 0 && packet.messageId !== undefined ? { client, messageId: packet.messageId } : undefined;
    let settled = false;
    let counted = true;
    const free = (): void => {
      if (!counted) return;
      counted = false;
      this.#active--;
      queueMicrotask(() => this.#pump());
    };
    const settle = (ack: boolean): void => {
      if (settled) return;
      settled = true;
      if (ack) this.#puback(held);
      free();
    };
    const topicName = packet.topic;
    const { envelope, error } = fromWire(
      {
        payload: packet.payload as Buffer,
        ...(packet.properties === undefined ? {} : { properties: packet.properties }),
      },
      { source: `${this.#deps.sourceLabel}/${topicName}` },
    );
    // DUP: the broker sends the message again, on a resumed session, because it was never acknowledged.
    const redelivered = packet.dup;
    const delivery: Delivery = {
      envelope,
      destination: destinationOf(this.#source, this.plan, topicName),
      redelivered,
      ...(error === undefined ? {} : { error }),
      ack: () => {
        settle(true);
        return Promise.resolve();
      },
      // MQTT has no NACK: an unacknowledged message comes back when this session resumes.
      release: () => {
        settle(false);
        return Promise.resolve();
      },
      retry: async (next: Envelope, delayMs: number) => {
        if (settled) return;
        free(); // the PUBACK stays held through the delay; the concurrency slot does not
        if (delayMs > 0) await this.#delay(delayMs);
        await this.#republish(next, topicName);
        settle(true);
      },
    };
    void this.#deliver(delivery).catch((failure: unknown) => {
      this.#deps.onError(toFerryError(failure));
      settle(false);
    });
  }

  /** Waits `ms`, or less when the subscription shuts down (the retry then goes out at once, never lost). */
  #delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#delayed.delete(done);
        resolve();
        this.#idle?.();
      };
      const timer = setTimeout(done, ms);
      this.#delayed.add(done);
      if (this.#closing) done();
    });
  }

  /** The retry copy goes to this subscription's own queue or group only. */
  async #republish(envelope: Envelope, topicName: string): Promise<void> {
    await this.#deps.publisher.send(
      retryCopy(envelope, topicName, this.plan, this.#source, this.#deps.protocolVersion),
      AbortSignal.timeout(this.#deps.publishTimeoutMs),
    );
  }

  /**
   * Stops handing messages to core at once. Returns the whole departure, which runs on in the background:
   * in-flight deliveries settle (retries waiting out a delay go out at once), then the session is left
   * as `departure` says. Callers that must not wait (core, which drains its handlers only after this
   * returns) do not await it.
   */
  close(departure: Departure, prepare?: () => Promise<void>): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#departure = departure;
      this.#prepare = prepare;
      for (const flush of [...this.#delayed]) flush();
      if (departure === 'hand-off') for (const next of this.#waiting.splice(0)) this.#forward(next.client, next.packet);
    }
    this.#closed ??= this.#depart();
    return this.#closed;
  }

  /** Closes at once (transport close), waiting at most `graceMs` for settlements and a hand-off. */
  async shutdownNow(departure: Departure, graceMs = 2_000, prepare?: () => Promise<void>): Promise<void> {
    const closed = this.close(departure, prepare);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([closed, timer]);
    this.#abandon = true;
    this.#idle?.();
    await this.#closed;
  }

  #departure: Departure = 'keep';
  /** Runs before a hand-off unsubscribes (e.g. makes sure the session that keeps the queue exists). */
  #prepare: (() => Promise<void>) | undefined;
  /** Set by shutdownNow: stop waiting and close. */
  #abandon = false;
  #idle: (() => void) | undefined;
  /** Hand-off forwards under way. */
  #forwarding = 0;
  #lastArrival = 0;

  async #depart(): Promise<void> {
    const session = this.connection.session;
    await this.#until(() => this.#active === 0 && this.#delayed.size === 0);
    if (this.#prepare !== undefined) {
      await this.#prepare().catch((error: unknown) => this.#deps.onError(toFerryError(error)));
    }
    if (this.#departure !== 'keep' && session !== undefined && session === this.connection.session) {
      // Stop the broker routing more to this session; what it queued already still arrives.
      await unsubscribe(session, this.plan.filters);
      if (this.#departure === 'hand-off') {
        // The broker sends what it had queued for this session as PUBACKs free its window: forward each
        // to the queue or group (the other members) until nothing more comes.
        await this.#until(() => this.#forwarding === 0 && Date.now() - this.#lastArrival >= HAND_OFF_QUIET_MS, true);
      }
    }
    await this.connection.close(this.#departure !== 'keep');
  }

  /** Resolves once `condition` holds (re-checked on every settlement and, with `poll`, every 50 ms), or on abandon. */
  #until(condition: () => boolean, poll = false): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#abandon || condition()) {
          clearInterval(timer);
          this.#idle = undefined;
          resolve();
        }
      };
      const timer = poll ? setInterval(check, 50) : undefined;
      this.#idle = check;
      check();
    });
  }

  /** Hand-off: republishes a message this session will not handle to its queue or group, byte for byte, then acknowledges it. */
  #forward(client: MqttClient, packet: IPublishPacket): void {
    this.#forwarding++;
    this.#lastArrival = Date.now();
    const held: Held | undefined =
      packet.qos > 0 && packet.messageId !== undefined ? { client, messageId: packet.messageId } : undefined;
    this.#deps.publisher
      .send(
        forwardedCopy(packet, this.plan, this.#deps.protocolVersion),
        AbortSignal.timeout(this.#deps.publishTimeoutMs),
      )
      .then(
        () => this.#puback(held),
        (error: unknown) => this.#deps.onError(toFerryError(error)),
      )
      .finally(() => {
        this.#forwarding--;
        this.#idle?.();
      });
  }
}
