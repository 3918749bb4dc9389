import {
  type Broker,
  type ConnectOptions,
  type ConsumeMiddleware,
  type ConsumerOptions,
  type PublishMiddleware,
  queue,
} from '@ferry/core';
import {
  expectSoakPassed,
  FaultProxy,
  observeFor,
  runSoak,
  type SoakReport,
  soakSize,
  uniqueName,
  waitFor,
} from '@ferry/conformance';
import { describe, expect, it } from 'vitest';
import { connectMqtt, MOSQUITTO, MOSQUITTO_V5, type MqttTarget, removeSessions } from './broker.js';
import { PrivateMosquitto, type PrivateMosquittoOptions } from './private-mosquitto.js';

/** 20,000 in the full profile (`npm run test:full`); 2,000 in `npm test` (DESIGN: short fault tests there). */
const TOTAL = soakSize();

/** Long enough to ride out a broker restart: a publish waits for the link, then is sent again (same id). */
const PUBLISH_TIMEOUT = 30_000;

/** Two consumers (two members of the queue's shared subscription, slots 0 and 1) and a publisher, all with this run's instance id. */
async function brokersOn(
  target: MqttTarget,
  address?: string,
  options: { consumer?: ConnectOptions; publisher?: ConnectOptions } = {},
): Promise<{ consumers: Broker[]; publisher: Broker }> {
  const consumers = [
    await connectMqtt(target, options.consumer, address),
    await connectMqtt(target, options.consumer, address),
  ];
  const publisher = await connectMqtt(target, { publishTimeout: PUBLISH_TIMEOUT, ...options.publisher }, address);
  return { consumers, publisher };
}

describe(`mqtt soak: ${TOTAL} QoS 1 messages to a durable queue (shared subscription on persistent sessions)`, () => {
  it('machine Mosquitto, every connection dropped three times through a fault proxy: loses nothing; the idempotent handler sees no duplicate', async () => {
    // One proxy carries every connection (publisher and both consumers): the slot registry that numbers a
    // queue's members is per broker address, so consumers behind different proxies would both take slot 0.
    const proxy = await FaultProxy.start({ target: MOSQUITTO });
    const { consumers, publisher } = await brokersOn(MOSQUITTO_V5, proxy.address);
    const all = [...consumers, publisher];
    const q = queue(uniqueName('ferry-soak'));
    const cutAll = (): Promise<void> => proxy.cut();
    const holdOut = async (): Promise<void> => {
      // Cut and refuse until every broker noticed the outage, then let them back.
      await proxy.refuse();
      await waitFor(() => all.every((b) => b.health().status !== 'up'), 10_000, 'every broker to notice the cut');
      proxy.accept();
    };
    try {
      const report = await runSoak({
        queue: q,
        publisher,
        consumers,
        total: TOTAL,
        faults: [cutAll, holdOut, cutAll],
        // MQTT has no way to ask for a queue's depth, and this Mosquitto's `$SYS` store count covers every
        // session of every test run on the machine: every confirmed message handled is the drain check here.
        depth: () => Promise.resolve(0),
      });
      console.info(`[mqtt soak: machine Mosquitto, 3 proxy cuts] ${JSON.stringify(report)}`);
      expectSoakPassed(report);
    } finally {
      proxy.accept();
      await Promise.all(all.map((b) => b.close()));
      // The sessions were made (and recorded) under the proxy's address: remove them through it.
      await removeSessions({ ...MOSQUITTO_V5, port: proxy.port });
      await proxy.close();
    }
  }, 300_000);

  it('private Mosquitto (persistence on) stopped gracefully and restarted twice: loses nothing; the idempotent handler sees no duplicate', async () => {
    const mosquitto = await PrivateMosquitto.start();
    try {
      const { consumers, publisher } = await brokersOn(mosquitto.target);
      const q = queue(uniqueName('ferry-soak'));
      try {
        const report = await runSoak({
          queue: q,
          publisher,
          consumers,
          total: TOTAL,
          // SIGTERM: Mosquitto writes sessions, subscriptions and queued messages to disk on the way out.
          faults: [() => mosquitto.restart(), () => mosquitto.restart()],
          depth: () => mosquitto.storedMessages(),
        });
        console.info(`[mqtt soak: private Mosquitto, 2 graceful restarts] ${JSON.stringify(report)}`);
        expectSoakPassed(report);
      } finally {
        await Promise.all([...consumers, publisher].map((b) => b.close()));
      }
    } finally {
      await mosquitto.close();
    }
  }, 300_000);

  /**
   * Mosquitto acknowledges a QoS 1 PUBLISH before anything is on disk: it writes its database only on a
   * graceful exit, on SIGUSR1 and every `autosave_interval` (default 1800 s; with `autosave_on_changes`,
   * every that many changes). A `kill -9` loses whatever the broker accepted since the last save and had
   * not yet delivered. Measured, not asserted: the figures are the point.
   */
  it.each<{ label: string; options: PrivateMosquittoOptions }>([
    { label: 'default autosave (autosave_interval 1800)', options: {} },
    { label: 'autosave_interval 1', options: { autosaveIntervalSec: 1 } },
    {
      label: 'autosave_interval 1, autosave_on_changes true',
      options: { autosaveIntervalSec: 1, autosaveOnChanges: true },
    },
  ])(
    'private Mosquitto killed with kill -9 once and restarted, $label: measures the loss; nothing unexpected, the idempotent handler sees no duplicate',
    async ({ label, options }) => {
      const mosquitto = await PrivateMosquitto.start(options);
      try {
        const tap = new Tap();
        // A long-running broker saved its sessions at some earlier autosave; a fresh one has not. Save once
        // (SIGUSR1), after the consumers subscribed and before the first publish, so that the crash costs
        // messages, not the subscriptions themselves.
        let checkpoint: Promise<void> | undefined;
        const { consumers, publisher } = await brokersOn(mosquitto.target, undefined, {
          publisher: { middleware: { publish: [tap.publishes(() => (checkpoint ??= mosquitto.save()))] } },
        });
        for (const broker of [publisher, ...consumers]) tap.watch(broker);
        const q = queue(uniqueName('ferry-soak'));
        const depth = (): Promise<number> => mosquitto.storedMessages();
        try {
          let report: SoakReport;
          try {
            report = await runSoak({
              queue: q,
              publisher,
              consumers: consumers.map((b) => tap.consumer(b)),
              total: TOTAL,
              faults: [() => mosquitto.crashAndRestart()],
              depth,
              // Lost messages never come: do not wait long for them.
              waitMs: 15_000,
            });
          } catch (error) {
            // runSoak fails when a confirmed message is never handled: count from the tap instead.
            if (!(error instanceof Error) || !error.message.includes('every confirmed message to be handled'))
              throw error;
            await tap.settle(depth);
            report = tap.report(TOTAL, 1);
          }
          console.info(`[mqtt soak: private Mosquitto, kill -9, ${label}] ${JSON.stringify(report)}`);
          expect(report.disconnects, 'disconnected events (proof the crash landed)').toBeGreaterThanOrEqual(1);
          expect(report.unexpected, 'deliveries of messages never published').toBe(0);
          expect(report.failedAfterRetries, 'publishes that never resolved').toBe(0);
          expect(report.handlerDuplicates, 'handler runs past the idempotency middleware').toBe(0);
        } finally {
          await Promise.all([...consumers, publisher].map((b) => b.close()));
        }
      } finally {
        await mosquitto.close();
      }
    },
    300_000,
  );
});

/**
 * What runSoak counts, counted again outside it, for the run where confirmed messages are lost (runSoak
 * then fails with a timeout instead of returning its report). Deliveries are recorded before the
 * idempotency middleware and handler runs after it, as runSoak does.
 */
class Tap {
  readonly #attempted = new Set<string>();
  readonly #confirmed = new Set<string>();
  #publishCalls = 0;
  #firstPublish = 0;
  #lastConfirm = 0;
  readonly #deliveries = new Map<string, number>();
  readonly #handled = new Map<string, number>();
  #flagged = 0;
  #unflagged = 0;
  #disconnects = 0;

  /** Publish middleware: runs `before` once first, then records every attempt and every confirmed id. */
  publishes(before: () => Promise<void>): PublishMiddleware {
    return async (ctx, next) => {
      await before();
      this.#firstPublish ||= Date.now();
      this.#publishCalls++;
      this.#attempted.add(ctx.message.id);
      await next();
      this.#confirmed.add(ctx.message.id);
      this.#lastConfirm = Date.now();
    };
  }

  /** The broker, with every consumer it makes recording deliveries (outermost) and handler runs (innermost). */
  consumer(broker: Broker): Broker {
    const deliveries: ConsumeMiddleware = async (ctx, next) => {
      const { id, redelivered, attempt } = ctx.message;
      if (attempt === 1) {
        const seen = this.#deliveries.get(id) ?? 0;
        if (seen > 0) {
          if (redelivered) this.#flagged++;
          else this.#unflagged++;
        }
        this.#deliveries.set(id, seen + 1);
      }
      await next();
    };
    const handled: ConsumeMiddleware = async (ctx, next) => {
      this.#handled.set(ctx.message.id, (this.#handled.get(ctx.message.id) ?? 0) + 1);
      await next();
    };
    return new Proxy(broker, {
      get: (target, property) => {
        if (property === 'consumer') {
          return (options: ConsumerOptions = {}) =>
            target.consumer({ ...options, middleware: [deliveries, ...(options.middleware ?? []), handled] });
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Counts the broker's `disconnected` events. */
  watch(broker: Broker): void {
    broker.on('disconnected', () => void this.#disconnects++);
  }

  /** As runSoak ends a run: the broker holds nothing more, and late copies stopped coming. */
  async settle(depth: () => Promise<number>): Promise<void> {
    await waitFor(async () => (await depth()) === 0, 30_000, 'the queue to drain');
    let count = -1;
    await waitFor(
      async () => {
        const before = count;
        await observeFor(500);
        count = [...this.#deliveries.values()].reduce((a, b) => a + b, 0);
        return count === before;
      },
      30_000,
      'deliveries to stop',
    );
  }

  /** The figures in runSoak's shape. */
  report(total: number, faults: number): SoakReport {
    const publishMs = Math.max(1, this.#lastConfirm - this.#firstPublish);
    return {
      published: total,
      confirmed: this.#confirmed.size,
      failedAfterRetries: this.#attempted.size - this.#confirmed.size,
      publishRetries: this.#publishCalls - this.#attempted.size,
      lost: [...this.#confirmed].filter((id) => !this.#deliveries.has(id)).length,
      unexpected: [...this.#deliveries.keys()].filter((id) => !this.#attempted.has(id)).length,
      flaggedDuplicates: this.#flagged,
      unflaggedDuplicates: this.#unflagged,
      handlerDuplicates: [...this.#handled.values()].filter((c) => c > 1).length,
      inFlight: 200,
      faults,
      disconnects: this.#disconnects,
      publishMs,
      msgPerSecond: Math.round((total / publishMs) * 1000),
    };
  }
}
