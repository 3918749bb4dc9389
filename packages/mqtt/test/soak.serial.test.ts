import {
  type Broker,
  type ConsumeMiddleware,
  type ConsumerOptions,
  type PublishMiddleware,
  type Queue,
  queue,
} from '@ferry/core';
import {
  expectSoakPassed,
  FaultProxy,
  observeFor,
  runSoak,
  type SoakOptions,
  type SoakReport,
  soakSize,
  uniqueName,
  waitFor,
} from '@ferry/conformance';
import { describe, expect, it } from 'vitest';
import { connectMqtt, MOSQUITTO, MOSQUITTO_V5, removeSessions } from './broker.js';
import { PrivateMosquitto, type PrivateMosquittoOptions } from './private-mosquitto.js';

/** 20,000 in the full profile (`npm run test:full`); 2,000 in `npm test` (DESIGN: short fault tests there). */
const TOTAL = soakSize();

/** Long enough to ride out a broker restart: a publish waits for the link, then is sent again (same id). */
const PUBLISH_TIMEOUT = 30_000;

/** Publishes in flight at once (runSoak's default). */
const IN_FLIGHT = 200;

/**
 * Resolves once every broker reported `connected` (back after an outage, subscriptions re-made) after
 * this call; rejects after `timeoutMs`. Call it before the fault.
 */
function nextConnected(brokers: readonly Broker[], timeoutMs = 30_000): Promise<void> {
  const all = Promise.all(
    brokers.map(
      (broker) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            broker.off('connected', done);
            reject(new Error(`a consumer did not reconnect within ${timeoutMs} ms`));
          }, timeoutMs);
          const done = (): void => {
            clearTimeout(timer);
            broker.off('connected', done);
            resolve();
          };
          broker.on('connected', done);
        }),
    ),
  ).then(() => undefined);
  all.catch(() => undefined); // awaited by the fault; not an unhandled rejection if the fault fails first
  return all;
}

describe(`mqtt soak: ${TOTAL} QoS 1 messages to a durable queue (shared subscription on persistent sessions)`, () => {
  it('machine Mosquitto, every connection dropped three times through a fault proxy: loses nothing; the idempotent handler sees no duplicate', async () => {
    // One proxy carries every connection (publisher and both consumers): the slot registry that numbers a
    // queue's members is per broker address, so consumers behind different proxies would both take slot 0.
    const proxy = await FaultProxy.start({ target: MOSQUITTO });
    const consumers = [
      await connectMqtt(MOSQUITTO_V5, {}, proxy.address),
      await connectMqtt(MOSQUITTO_V5, {}, proxy.address),
    ];
    const publisher = await connectMqtt(MOSQUITTO_V5, { publishTimeout: PUBLISH_TIMEOUT }, proxy.address);
    const all = [...consumers, publisher];
    const cutAll = (): Promise<void> => proxy.cut();
    const holdOut = async (): Promise<void> => {
      // Cut, and refuse until every broker noticed the outage; then let them back.
      await proxy.refuse();
      await waitFor(() => all.every((b) => b.health().status !== 'up'), 10_000, 'every broker to notice the cut');
      proxy.accept();
    };
    try {
      const report = await runSoak({
        queue: queue(uniqueName('ferry-soak')),
        publisher,
        consumers,
        total: TOTAL,
        inFlight: IN_FLIGHT,
        faults: [cutAll, holdOut, cutAll],
        // MQTT has no way to ask for a queue's depth, and this Mosquitto's `$SYS` store count covers every
        // session of every test run on the machine: "every confirmed message handled" is the drain check.
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

  /*
   * Mosquitto 2.0.11 saves a persistent session's plain subscriptions but not its shared ones ($share/…):
   * after a restart a queue has no subscription until its consumers reconnect and SUBSCRIBE again. A
   * QoS 1 publish in between is acknowledged with MQTT 5 reason code 0x10 ("no matching subscribers")
   * and dropped; Ferry's publisher reads that code and sends a queue publish again until a subscriber
   * matches (up to `unroutableGraceMs`). So the publisher is not held back here.
   */
  it('private Mosquitto (persistence on) stopped gracefully and restarted twice while publishing: loses nothing; the idempotent handler sees no duplicate', async () => {
    await withPrivateMosquitto({}, async (run) => {
      const restart = (): Promise<void> => run.mosquitto.restart();
      const report = await runSoak(run.soak([restart, restart]));
      console.info(`[mqtt soak: private Mosquitto, 2 graceful restarts] ${JSON.stringify(report)}`);
      expectSoakPassed(report);
    });
  }, 300_000);

  /*
   * Mosquitto acknowledges a QoS 1 PUBLISH before anything is on disk: it writes its database only on a
   * graceful exit, on SIGUSR1 and every `autosave_interval` (default 1800 s; with `autosave_on_changes`,
   * every that many changes). A `kill -9` loses what the broker held that the last save did not: messages
   * accepted and not yet delivered and acknowledged. Consumers that keep up leave almost nothing in the
   * broker, so the consumers are kept out from the first third of the run to the crash (at two thirds):
   * the queue then holds a third of the run when Mosquitto is killed. Measured, not asserted.
   */
  it.each<{ label: string; options: PrivateMosquittoOptions }>([
    { label: 'default autosave (autosave_interval 1800)', options: {} },
    { label: 'autosave_interval 1', options: { autosaveIntervalSec: 1 } },
    {
      label: 'autosave_interval 1, autosave_on_changes true',
      options: { autosaveIntervalSec: 1, autosaveOnChanges: true },
    },
  ])(
    'private Mosquitto killed with kill -9 once, with a backlog, and restarted ($label): measures the loss; nothing unexpected, the idempotent handler sees no duplicate',
    async ({ label, options }) => {
      await withPrivateMosquitto(options, async (run) => {
        const holdConsumersOut = async (): Promise<void> => {
          await run.consumerProxy.refuse();
          await waitFor(
            () => run.consumers.every((b) => b.health().status !== 'up'),
            10_000,
            'the consumers to notice the cut',
          );
        };
        const crash = async (): Promise<void> => {
          const back = nextConnected(run.consumers);
          await run.publisherProxy.refuse();
          await run.mosquitto.crashAndRestart();
          run.consumerProxy.accept();
          await back;
          run.publisherProxy.accept();
        };
        const report = await measureSoak(run, [holdConsumersOut, crash]);
        console.info(`[mqtt soak: private Mosquitto, kill -9 with a backlog, ${label}] ${JSON.stringify(report)}`);
        expectMeasuredRun(report);
      });
    },
    300_000,
  );
});

/** A private Mosquitto, two consumers behind one fault proxy, a publisher behind another, and a tap on all of them. */
interface PrivateRun {
  readonly mosquitto: PrivateMosquitto;
  readonly consumerProxy: FaultProxy;
  readonly publisherProxy: FaultProxy;
  readonly consumers: readonly Broker[];
  readonly publisher: Broker;
  readonly tap: Tap;
  readonly queue: Queue;
  /** runSoak's options for this run, with these faults. */
  soak(faults: SoakOptions['faults'], waitMs?: number): SoakOptions;
}

async function withPrivateMosquitto(
  options: PrivateMosquittoOptions,
  body: (run: PrivateRun) => Promise<void>,
): Promise<void> {
  const mosquitto = await PrivateMosquitto.start(options);
  const target = mosquitto.target;
  const consumerProxy = await FaultProxy.start({ target });
  const publisherProxy = await FaultProxy.start({ target });
  const tap = new Tap();
  const brokers: Broker[] = [];
  try {
    // Both consumers behind one proxy: one broker address, so they take slots 0 and 1 of the queue.
    for (let i = 0; i < 2; i++) brokers.push(tap.consumer(await connectMqtt(target, {}, consumerProxy.address)));
    const publisher = await connectMqtt(
      target,
      { publishTimeout: PUBLISH_TIMEOUT, middleware: { publish: [tap.publishes()] } },
      publisherProxy.address,
    );
    brokers.push(publisher);
    for (const broker of brokers) tap.watch(broker);
    const consumers = brokers.slice(0, 2);
    const q = queue(uniqueName('ferry-soak'));
    await body({
      mosquitto,
      consumerProxy,
      publisherProxy,
      consumers,
      publisher,
      tap,
      queue: q,
      soak: (faults, waitMs) => ({
        queue: q,
        publisher,
        consumers,
        total: TOTAL,
        inFlight: IN_FLIGHT,
        faults,
        // What the broker still holds, from its `$SYS` store count: this broker has no other queues.
        depth: () => mosquitto.storedMessages(),
        ...(waitMs === undefined ? {} : { waitMs }),
      }),
    });
  } finally {
    consumerProxy.accept();
    publisherProxy.accept();
    await Promise.all(brokers.map((b) => b.close()));
    await Promise.all([consumerProxy.close(), publisherProxy.close()]);
    // The sessions go with the broker's directory.
    await mosquitto.close();
  }
}

/**
 * runSoak for a run that may lose confirmed messages: runSoak then fails after `waitMs` (it waits for
 * every confirmed message), so the figures come from the tap, counted the same way.
 */
async function measureSoak(run: PrivateRun, faults: SoakOptions['faults']): Promise<SoakReport> {
  const options = run.soak(faults, 10_000);
  try {
    return await runSoak(options);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.includes('every confirmed message to be handled')) throw error;
    await run.tap.settle(options.depth);
    return run.tap.report(TOTAL, faults.length);
  }
}

/** What must hold even where the broker loses messages. */
function expectMeasuredRun(report: SoakReport): void {
  expect(report.disconnects, 'disconnected events (proof the faults landed)').toBeGreaterThanOrEqual(report.faults);
  expect(report.unexpected, 'deliveries of messages never published').toBe(0);
  expect(report.failedAfterRetries, 'publishes that never resolved').toBe(0);
  expect(report.handlerDuplicates, 'handler runs past the idempotency middleware').toBe(0);
}

/**
 * What runSoak counts, counted again outside it, for runs that lose confirmed messages (runSoak then
 * fails instead of returning its report). Deliveries are recorded before the idempotency middleware and
 * handler runs after it, as runSoak does; nothing is deduplicated before counting.
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

  /** Publish middleware: records every attempt and every confirmed id. */
  publishes(): PublishMiddleware {
    return async (ctx, next) => {
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
      failedAfterRetries: total - this.#confirmed.size,
      publishRetries: this.#publishCalls - this.#attempted.size,
      lost: [...this.#confirmed].filter((id) => !this.#deliveries.has(id)).length,
      unexpected: [...this.#deliveries.keys()].filter((id) => !this.#attempted.has(id)).length,
      flaggedDuplicates: this.#flagged,
      unflaggedDuplicates: this.#unflagged,
      handlerDuplicates: [...this.#handled.values()].filter((c) => c > 1).length,
      inFlight: IN_FLIGHT,
      faults,
      disconnects: this.#disconnects,
      publishMs,
      msgPerSecond: Math.round((total / publishMs) * 1000),
    };
  }
}
