import { randomBytes } from 'node:crypto';
import {
  type Capabilities,
  ClosedError,
  ConnectionError,
  DEFAULT_PUBLISH_TIMEOUT,
  type Delivery,
  type Destination,
  Emitter,
  type Envelope,
  type HealthStatus,
  LinkState,
  abortable,
  type Transport,
  type TransportContext,
  type TransportEvents,
  type TransportPublishOptions,
  type TransportSubscribeOptions,
  type TransportSubscription,
  UnsupportedError,
  deadLetterQueueName,
  ErrorCode,
  toFerryError,
} from '@ferry/core';
import { ManagedConnection, type ConnectionSpec } from './connection.js';
import { hintQos, mqttCapabilities, resolveSettings, type MqttConnectOptions, type MqttSettings } from './options.js';
import { Publisher, reportsUnrouted } from './publisher.js';
import { claimSlot, claimSlotFor, ephemeralClientId, recordSession, type SlotLease } from './sessions.js';
import { type Departure, MqttSubscription, takeOverAcks } from './subscription.js';
import { planSubscription, publishTopic, type SubscriptionPlan } from './topics.js';
import { toWire, wireMode } from './wire.js';

/** Private sessions (topic subscriptions without a group) outlive a connection loss by this much at most, s. */
const PRIVATE_SESSION_EXPIRY_SEC = 300;

/**
 * The MQTT transport (MQTT 5 or 3.1.1, on mqtt.js). One connection publishes; each subscription has a
 * connection — and, for a queue or a group, a persistent session with a stable client id — of its own
 * (see {@link MqttSubscription}). After a reconnect every subscription is re-issued before waiting
 * publishes go out.
 */
export class MqttTransport extends Emitter<TransportEvents> implements Transport {
  readonly name = 'mqtt';
  readonly capabilities: Capabilities;
  readonly #publishing: ManagedConnection;
  readonly #context: TransportContext;
  readonly #settings: MqttSettings;
  readonly #shared: boolean;
  readonly #publisher: Publisher;
  readonly #subscriptions = new Set<{
    readonly subscription: MqttSubscription;
    readonly departure: () => Leaving;
    readonly lease: SlotLease | undefined;
  }>();
  readonly #publishTimeoutMs: number;
  readonly #broker: string;
  /** Departures of closed subscriptions still under way (hand-offs publish through this transport). */
  readonly #departures = new Set<Promise<void>>();
  /** Dead-letter queues whose sessions this transport subscribed in advance. */
  readonly #deadLetterPlans = new Map<string, SubscriptionPlan>();
  readonly #link: LinkState;

  constructor(
    context: TransportContext,
    settings: MqttSettings,
    publishing: ManagedConnection,
    shared: boolean,
    reportsUnrouted: boolean,
  ) {
    super();
    this.#link = new LinkState('MQTT connection', {
      disconnected: (error) => this.emit('disconnected', error),
      connected: () => {
        this.emit('connected');
        this.#reserveAgain();
      },
    });
    this.#context = context;
    this.#settings = settings;
    this.#shared = shared;
    this.#publishing = publishing;
    this.#broker = `${settings.host}:${settings.port}`;
    this.capabilities = mqttCapabilities({
      sharedSubscriptions: shared,
      protocolVersion: settings.protocolVersion,
      stableInstance: settings.stableInstance,
      crashDurable: false,
      reportsUnrouted,
    });
    const timeout = context.options['publishTimeout'];
    this.#publishTimeoutMs = typeof timeout === 'number' ? timeout : DEFAULT_PUBLISH_TIMEOUT;
    this.#publisher = new Publisher(publishing, (signal) => this.#link.whenUp(signal));
    this.#publisher.unroutableGraceMs = settings.unroutableGraceMs;
    this.#watch(publishing);
    publishing.on('up', () => this.#maybeUp());
  }

  #watch(connection: ManagedConnection): void {
    connection.on('down', (error) => this.#link.down(error));
    connection.on('reconnecting', (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs));
    connection.on('brokerError', (error) => this.emit('error', error));
  }

  status(): { status: HealthStatus; details: Record<string, string | number | boolean> } {
    return {
      status: this.#link.status,
      details: {
        protocolVersion: this.#settings.protocolVersion,
        sharedSubscriptions: this.#shared,
        instanceId: this.#settings.instanceId,
        stableInstance: this.#settings.stableInstance,
      },
    };
  }

  async publish(destination: Destination, envelope: Envelope, options: TransportPublishOptions): Promise<void> {
    if (this.#link.status === 'down') throw new ClosedError('MQTT connection');
    const target = publishTopic(destination);
    const hints = destination.options.mqtt;
    const wire = toWire(
      envelope,
      wireMode(destination, this.#settings.protocolVersion),
      this.#settings.protocolVersion,
    );
    await this.#publisher.send(
      {
        topic: target,
        payload: wire.payload,
        qos: hintQos(hints?.qos) ?? this.#settings.qos,
        retain: hints?.retain === true,
        properties: wire.properties,
        // A queue publish nobody can receive is never dropped quietly, mandatory or not (dead letters
        // are published with mandatory false); a topic publish fails only when mandatory.
        unrouted: destination.kind === 'queue' ? 'wait' : options.mandatory ? 'reject' : 'ignore',
        label: `${destination.kind} ${destination.name}`,
      },
      options.signal,
    );
  }

  async subscribe(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
  ): Promise<TransportSubscription> {
    if (this.#link.status === 'down') throw new ClosedError('MQTT connection');
    const s = this.#settings;
    const privateId = `${s.instanceId}-${options.id}-${randomBytes(3).toString('hex')}`;
    const plan = planSubscription(source, options.group, privateId, this.#shared);
    const persistent = plan.share !== undefined || source.kind === 'queue';
    const lease = persistent ? await claimSlot(this.#broker, s.instanceId, plan.sessionKey) : undefined;
    if (lease !== undefined && lease.slot > 0 && !this.#shared) {
      lease.releaseAfter(Promise.resolve());
      throw new UnsupportedError(
        `Queue ${source.name} already has a consumer in this process, and this MQTT broker has no shared subscriptions (RabbitMQ's MQTT plugin): a second consumer would receive every message too. Use one subscription with a higher concurrency`,
      );
    }
    const spec: ConnectionSpec = persistent
      ? {
          role: 'consume',
          clientId: lease!.clientId,
          clean: false,
          sessionExpirySec: s.sessionExpirySec,
          receiveMaximum: receiveWindow(options.concurrency),
        }
      : {
          role: 'consume',
          clientId: `ferry-${privateId}`,
          clean: s.protocolVersion === 4, // 3.1.1 sessions never expire on Mosquitto: a private one would linger
          sessionExpirySec: PRIVATE_SESSION_EXPIRY_SEC,
          receiveMaximum: receiveWindow(options.concurrency),
        };
    if (persistent) recordSession(this.#broker, spec.clientId);
    const { logger, redactor, reconnect } = this.#context;
    const connection = new ManagedConnection(spec, s, reconnect, logger, redactor);
    const subscription = new MqttSubscription(connection, source, plan, options, deliver, {
      publisher: this.#publisher,
      publishTimeoutMs: this.#publishTimeoutMs,
      sourceLabel: connection.label,
      protocolVersion: s.protocolVersion,
      onError: (error) => this.emit('error', error),
    });
    const departure = (): Leaving => {
      if (lease === undefined) return { departure: 'end' };
      if (!s.stableInstance || s.handOffOnClose || lease.others() > 0) return { departure: 'hand-off' };
      // The last member of this process keeps the queue's or group's messages until it comes back. They
      // wait in slot 0's session, the one a returning consumer resumes first: a last member in another
      // slot makes sure slot 0 is subscribed, then hands what it holds to it.
      if (lease.slot === 0) return { departure: 'keep' };
      return { departure: 'hand-off', prepare: () => this.#reserve(plan, 0) };
    };
    const entry = { subscription, departure, lease };
    const signal = AbortSignal.timeout(this.#publishTimeoutMs);
    try {
      await this.#link.whenUp(signal);
      const session = await abortable(connection.open(), signal);
      this.#watch(connection);
      connection.on('up', () => this.#maybeUp());
      this.#subscriptions.add(entry);
      await abortable(subscription.start(session), signal);
      if (persistent && s.stableInstance) await abortable(this.#reserveDeadLetters(source, options.group), signal);
    } catch (error) {
      this.#subscriptions.delete(entry);
      const closed = subscription.shutdownNow(lease === undefined ? 'end' : 'keep', 0);
      lease?.releaseAfter(closed);
      await closed;
      if (signal.aborted && error === signal.reason) {
        throw new ConnectionError(
          `Could not subscribe to ${plan.label} within ${this.#publishTimeoutMs} ms: the MQTT broker is unreachable`,
          { cause: error },
        );
      }
      throw error;
    }
    return {
      close: () => {
        if (this.#subscriptions.delete(entry)) {
          const leaving = departure();
          const departed = subscription.close(leaving.departure, leaving.prepare);
          this.#departures.add(departed);
          void departed.finally(() => this.#departures.delete(departed));
          lease?.releaseAfter(departed);
          this.#maybeUp();
        }
        return Promise.resolve();
      },
    };
  }

  /**
   * MQTT brokers keep messages only for sessions that subscribed: so that a dead letter is never dropped
   * for want of a reader, the session that this instance's consumer of the dead-letter queue will resume
   * (slot 0) subscribes now, unless this process already consumes it.
   */
  async #reserveDeadLetters(source: Destination, group: string | undefined): Promise<void> {
    const dlq = { kind: 'queue', name: deadLetterQueueName(source, group), options: {} } as const;
    const plan = planSubscription(dlq, undefined, 'reserve', this.#shared);
    this.#deadLetterPlans.set(plan.sessionKey, plan);
    await this.#reserve(plan, 0, true);
  }

  /**
   * After an outage, subscribes the dead-letter sessions again: Mosquitto 2.0 does not persist shared
   * subscriptions, so a restart leaves offline sessions without them (measured here).
   */
  #reserveAgain(): void {
    for (const plan of this.#deadLetterPlans.values()) {
      this.#reserve(plan, 0).catch((error: unknown) => this.emit('error', toFerryError(error, ErrorCode.CONNECTION)));
    }
  }

  /**
   * Makes sure `slot`'s persistent session of a queue or group is subscribed, without consuming from it:
   * the broker then keeps its share of messages for the consumer that resumes that session. Skipped
   * while this process uses the slot (the subscription exists then). `once`: at most once per process.
   */
  async #reserve(plan: SubscriptionPlan, slot: number, once = false): Promise<void> {
    const s = this.#settings;
    const key = `${this.#broker}|${s.instanceId}|${plan.sessionKey}`;
    if (once && reserved.has(key)) return;
    let finish!: () => void;
    const work = new Promise<void>((resolve) => (finish = resolve));
    const clientId = await claimSlotFor(this.#broker, s.instanceId, plan.sessionKey, slot, work);
    if (clientId === undefined) return; // a consumer of this process holds it: the subscription exists
    try {
      recordSession(this.#broker, clientId);
      const { logger, redactor, reconnect } = this.#context;
      const connection = new ManagedConnection(
        { role: 'reserve', clientId, clean: false, sessionExpirySec: s.sessionExpirySec },
        s,
        reconnect,
        logger,
        redactor,
      );
      // Never handle (or acknowledge) what a resumed session delivers: it waits for its consumer.
      connection.onClient = (client) => takeOverAcks(client, () => undefined);
      const session = await connection.open();
      try {
        await new Promise<void>((resolve, reject) => {
          session.client.subscribe([...plan.filters], { qos: 1 }, (error) => (error ? reject(error) : resolve()));
        });
        reserved.add(key);
      } finally {
        await connection.close();
      }
    } finally {
      finish();
    }
  }

  async close(): Promise<void> {
    if (this.#link.status === 'down') return;
    this.#link.close();
    const entries = [...this.#subscriptions];
    this.#subscriptions.clear();
    // Subscriptions closed before may still be handing messages off through the publishing connection.
    const earlier = [...this.#departures].map((departed) =>
      Promise.race([departed, new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]),
    );
    await Promise.all(
      entries.map(async ({ subscription, departure, lease }) => {
        const leaving = departure();
        const closed = subscription.shutdownNow(leaving.departure, 2_000, leaving.prepare);
        lease?.releaseAfter(closed);
        await closed;
      }),
    );
    await Promise.all(earlier);
    await this.#publishing.close();
  }

  #maybeUp(): void {
    if (this.#link.status === 'down') return;
    if (this.#publishing.session === undefined) return;
    for (const { subscription } of this.#subscriptions) {
      if (!subscription.ready) {
        const session = subscription.connection.session;
        if (session !== undefined)
          void subscription.start(session).then(
            () => this.#maybeUp(),
            () => undefined,
          );
        return;
      }
    }
    this.#link.up();
  }
}

/** How a subscription leaves: its departure, and what must happen before a hand-off. */
interface Leaving {
  readonly departure: Departure;
  readonly prepare?: () => Promise<void>;
}

/** Dead-letter sessions this process made sure of (per broker, instance and queue). */
const reserved = new Set<string>();

/** How many unacknowledged messages the broker may send one subscription: its concurrency plus room for retries waiting out their delay. */
function receiveWindow(concurrency: number): number {
  return Math.min(65_535, Math.max(concurrency * 2, concurrency + 10));
}

/** Probe results per broker (`host:port`): does a 3.1.1 broker deliver through `$share/…`? */
const probes = new Map<string, Promise<boolean>>();

/**
 * MQTT 3.1.1 has no way to ask whether the broker does shared subscriptions, and RabbitMQ's plugin
 * takes `$share/…` as a literal topic without a word: subscribe through a share and publish once.
 */
function probeSharedSubscriptions(context: TransportContext, settings: MqttSettings): Promise<boolean> {
  const key = `${settings.host}:${settings.port}`;
  let probe = probes.get(key);
  if (probe === undefined) {
    probe = (async () => {
      const id = randomBytes(6).toString('hex');
      const connection = new ManagedConnection(
        { role: 'probe', clientId: `ferry-probe-${id}`, clean: true, sessionExpirySec: 0 },
        settings,
        context.reconnect,
        context.logger,
        context.redactor,
      );
      const session = await connection.open();
      try {
        return await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 2_000);
          session.client.on('message', (topic) => {
            if (topic === `ferry.probe/${id}`) {
              clearTimeout(timer);
              resolve(true);
            }
          });
          session.client.on('close', () => resolve(false));
          session.client.subscribe(`$share/ferry-probe-${id}/ferry.probe/${id}`, { qos: 1 }, (error, granted) => {
            if (error || (granted ?? []).some((g) => g.qos >= 0x80)) {
              clearTimeout(timer);
              resolve(false);
              return;
            }
            session.client.publish(`ferry.probe/${id}`, 'probe', { qos: 1 });
          });
        });
      } finally {
        await connection.close();
      }
    })();
    probes.set(key, probe);
    probe.catch(() => probes.delete(key));
  }
  return probe;
}

/** The factory `connect('mqtt://…')` uses. */
export async function createTransport(context: TransportContext): Promise<Transport> {
  const settings = resolveSettings(
    context.url,
    context.options['mqtt'] as MqttConnectOptions | undefined,
    context.connectionName,
  );
  const publishing = new ManagedConnection(
    { role: 'publish', clientId: ephemeralClientId(settings.instanceId, 'pub'), clean: true, sessionExpirySec: 0 },
    settings,
    context.reconnect,
    context.logger,
    context.redactor,
  );
  const session = await publishing.open();
  try {
    const shared =
      settings.sharedSubscriptions ??
      (settings.protocolVersion === 5
        ? session.sharedSubscriptionAvailable !== false
        : await probeSharedSubscriptions(context, settings));
    const unrouted =
      settings.protocolVersion === 5 &&
      (await reportsUnrouted(session, `ferry.probe/${randomBytes(6).toString('hex')}`));
    return new MqttTransport(context, settings, publishing, shared, unrouted);
  } catch (error) {
    await publishing.close();
    throw error;
  }
}
