import { type Destination, deadLetterQueueName, type TransportContext } from '@ferry/core';
import { takeOverAcks } from './acks.js';
import { subscribeFilters } from './copies.js';
import { ManagedConnection } from './connection.js';
import type { MqttSettings } from './options.js';
import { claimSlotFor, recordSession } from './sessions.js';
import { planSubscription, type SubscriptionPlan } from './topics.js';

/** Sessions this process subscribed once for all (per broker, instance and queue). */
const reserved = new Set<string>();

/**
 * Sessions subscribed in advance, without consuming from them: MQTT brokers keep messages only for
 * sessions that subscribed, so the session a consumer will resume must subscribe before anything is
 * published for it (a dead-letter queue, the slot a queue's last member leaves its messages in).
 */
export class Reservations {
  readonly #context: TransportContext;
  readonly #settings: MqttSettings;
  readonly #broker: string;
  readonly #shared: boolean;
  /** Dead-letter queues whose sessions this transport subscribed in advance. */
  readonly #deadLetters = new Map<string, SubscriptionPlan>();

  constructor(context: TransportContext, settings: MqttSettings, broker: string, shared: boolean) {
    this.#context = context;
    this.#settings = settings;
    this.#broker = broker;
    this.#shared = shared;
  }

  /**
   * So that a dead letter is never dropped for want of a reader, the session that this instance's
   * consumer of the dead-letter queue will resume (slot 0) subscribes now, unless this process already
   * consumes it.
   */
  async deadLetters(source: Destination, group: string | undefined): Promise<void> {
    const dlq = { kind: 'queue', name: deadLetterQueueName(source, group), options: {} } as const;
    const plan = planSubscription(dlq, undefined, 'reserve', this.#shared);
    this.#deadLetters.set(plan.sessionKey, plan);
    await this.reserve(plan, 0, true);
  }

  /**
   * After an outage, subscribes the dead-letter sessions again: Mosquitto 2.0 does not persist shared
   * subscriptions, so a restart leaves offline sessions without them (measured here).
   */
  again(onError: (error: unknown) => void): void {
    for (const plan of this.#deadLetters.values()) this.reserve(plan, 0).catch(onError);
  }

  /**
   * Makes sure `slot`'s persistent session of a queue or group is subscribed, without consuming from it:
   * the broker then keeps its share of messages for the consumer that resumes that session. Skipped
   * while this process uses the slot (the subscription exists then). `once`: at most once per process.
   */
  async reserve(plan: SubscriptionPlan, slot: number, once = false): Promise<void> {
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
        await subscribeFilters(session, plan);
        reserved.add(key);
      } finally {
        await connection.close();
      }
    } finally {
      finish();
    }
  }
}
