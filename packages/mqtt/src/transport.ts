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
  ErrorCode,
  toFerryError,
} from '@ferry/core';
import { ManagedConnection, type ConnectionSpec } from './connection.js';
import {
  hintQos,
  mqttCapabilities,
  receiveWindow,
  resolveSettings,
  type MqttConnectOptions,
  type MqttSettings,
} from './options.js';
import { probeSharedSubscriptions } from './probes.js';
import { Reservations } from './reservations.js';
import { Publisher, reportsUnrouted } from './publisher.js';
import { claimSlot, ephemeralClientId, type Leaving, leavingOf, recordSession, type SlotLease } from './sessions.js';
import { MqttSubscription } from './subscription.js';
import { planSubscription, publishTopic } from './topics.js';
import { toWire, wireMode } from './wire.js';

/** Private sessions (topic subscriptions without a group) outlive a connection loss by this much at most, s. */
const PRIVATE_SESSION_EXPIRY_SEC = 300;

/**
 * The MQTT transport (MQTT 5 or 3.1.1, on mqtt.js). One connection publishes; each subscription has a
 * connection — and, for a queue or a group, a persistent session with a stable client id — of its own
 * (see `MqttSubscription` in `src/subscription.ts`). After a reconnect every subscription is re-issued
 * before waiting publishes go out.
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
  readonly #reservations: Reservations;
  readonly #link: LinkState;

  /** Made by {@link createTransport}, which `connect()` calls. @internal */
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
        this.#reservations.again((error) => this.emit('error', toFerryError(error, ErrorCode.CONNECTION)));
      },
    });
    this.#context = context;
    this.#settings = settings;
    this.#shared = shared;
    this.#publishing = publishing;
    this.#broker = `${settings.host}:${settings.port}`;
    this.#reservations = new Reservations(context, settings, this.#broker, shared);
    this.capabilities = mqttCapabilities({
      sharedSubscriptions: shared,
      protocolVersion: settings.protocolVersion,
      stableInstance: settings.stableInstance,
      crashDurable: false,
      reportsUnrouted,
    });
    const timeout = context.options['publishTimeout'];
    this.#publishTimeoutMs = typeof timeout === 'number' ? timeout : DEFAULT_PUBLISH_TIMEOUT;
    this.#publisher = new Publisher(publishing, this.#link);
    this.#publisher.unroutableGraceMs = settings.unroutableGraceMs;
    this.#watch(publishing);
    publishing.on('up', () => this.#maybeUp());
  }

  #watch(connection: ManagedConnection): void {
    connection.on('down', (error) => this.#link.down(error));
    connection.on('reconnecting', (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs));
    connection.on('brokerError', (error) => this.emit('error', error));
  }

  status(): {
    /** `up`, `reconnecting` (a connection lost) or `down` (closed). */
    status: HealthStatus;
    /** `protocolVersion`, `sharedSubscriptions`, `instanceId` and `stableInstance` of this broker. */
    details: Record<string, string | number | boolean>;
  } {
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
    const departure = (): Leaving => leavingOf(lease, s, () => this.#reservations.reserve(plan, 0));
    const entry = { subscription, departure, lease };
    const signal = AbortSignal.timeout(this.#publishTimeoutMs);
    try {
      await this.#link.whenUp(signal);
      const session = await abortable(connection.open(), signal);
      this.#watch(connection);
      connection.on('up', () => this.#maybeUp());
      this.#subscriptions.add(entry);
      await abortable(subscription.start(session), signal);
      if (persistent && s.stableInstance)
        await abortable(this.#reservations.deadLetters(source, options.group), signal);
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
    if (this.#publishing.session === undefined) return;
    // A subscription not subscribed again yet: resume it, and look again once it is.
    this.#link.upWhenReady(
      [...this.#subscriptions].map((entry) => entry.subscription),
      () => this.#maybeUp(),
    );
  }
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
