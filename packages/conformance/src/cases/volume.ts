/**
 * Volume, fan-out, ordering, back-pressure and subscription churn: Watermill's universal tests (§1.3 of
 * the messaging anchors) on top of Ferry's API. Every size is `ctx.count(short, full)`.
 */
import type { Broker, Message, OutgoingMessage, Producer, Queue, Subscription, Topic } from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { type Deferred, deferred, observeFor, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { busy, idsOf, numbered, TEST_TYPE } from './common.js';

/** Whether the broker or Ferry marked this delivery as a repeat. */
function flagged(message: Message): boolean {
  return message.redelivered || message.attempt > 1;
}

/** How many ids of `expected` have not arrived. */
function missingCount(tally: Tally, expected: ReadonlySet<string>): number {
  let missing = 0;
  for (const id of expected) if (tally.count(id) === 0) missing++;
  return missing;
}

/** What is still missing, for a timeout message. */
function missingDetail(tally: Tally, expected: ReadonlySet<string>): string {
  const missing = missingCount(tally, expected);
  return `${missing} of ${expected.size} missing (e.g. ${tally.missing(expected, 5).join(', ')}); ${tally.deliveries} deliveries so far`;
}

/** `ctx.waitFor`, with `detail()` (computed when it times out) appended to the timeout message. */
async function waitUntil(
  ctx: CaseContext,
  condition: () => boolean,
  what: string,
  detail: () => string,
  timeoutMs?: number,
): Promise<void> {
  try {
    await ctx.waitFor(condition, what, timeoutMs);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('Timed out')) {
      throw new Error(`${error.message}: ${detail()}`, { cause: error });
    }
    throw error;
  }
}

/** Waits until every id of `expected` arrived in `tally`, naming the missing ones on timeout. */
function waitForAll(ctx: CaseContext, tally: Tally, expected: ReadonlySet<string>, what: string): Promise<void> {
  return waitUntil(
    ctx,
    () => tally.distinct >= expected.size && tally.hasAll(expected),
    what,
    () => missingDetail(tally, expected),
  );
}

/** Asserts that `tally` holds every id of `expected` exactly once and nothing else. */
function expectExactlyOnce(tally: Tally, expected: ReadonlySet<string>, who: string): void {
  expect(tally.missing(expected), `${who}: messages missing`).toEqual([]);
  expect(tally.unexpected(expected), `${who}: messages that were not sent to it`).toEqual([]);
  expect(tally.duplicates, `${who}: duplicate deliveries`).toBe(0);
}

/** The outcome of a promise, pollable: `settled` once it resolved or rejected, `failed` when it rejected. */
interface Tracked {
  readonly settled: boolean;
  readonly failed: boolean;
  /** True once resolved, false while pending; throws the error once rejected. */
  check(): boolean;
}

/** Tracks `promise` (and handles its rejection: read it through {@link Tracked.check}). */
function track(promise: Promise<unknown>): Tracked {
  const state = { settled: false, failed: false, error: undefined as unknown };
  void promise.then(
    () => {
      state.settled = true;
    },
    (error: unknown) => {
      Object.assign(state, { settled: true, failed: true, error });
    },
  );
  return {
    get settled() {
      return state.settled;
    },
    get failed() {
      return state.failed;
    },
    check(): boolean {
      if (state.failed) throw state.error;
      return state.settled;
    },
  };
}

/** Awaits `promise`, failing with `what` (and `detail()`) when it does not settle within `ctx.waitMs`. */
async function bounded<T>(
  ctx: CaseContext,
  what: string,
  promise: Promise<T>,
  detail = (): string => 'pending',
): Promise<T> {
  const state = track(promise);
  await waitUntil(ctx, () => state.settled, what, detail);
  return promise;
}

/** Where message `index` goes: one destination for all, or one per message. */
type Target = Queue | Topic | ((index: number) => Queue | Topic);

/** Publishes through several producers of one broker at once, counting the publishes that resolved. */
class Publisher {
  /** Publishes resolved so far. */
  resolved = 0;
  readonly #producers: Producer[];

  /** `parallel` producers of `broker`: that many publishes in flight at once. */
  constructor(broker: Broker, parallel: number) {
    this.#producers = Array.from({ length: parallel }, () => broker.producer());
  }

  /** Producer p sends messages p, p + parallel, ... each after the previous one resolved. */
  async publish(to: Target, messages: ReadonlyArray<OutgoingMessage>): Promise<void> {
    const stride = Math.min(this.#producers.length, messages.length);
    await Promise.all(
      this.#producers.slice(0, stride).map(async (producer, p) => {
        for (let i = p; i < messages.length; i += stride) {
          await producer.publish(typeof to === 'function' ? to(i) : to, messages[i] as OutgoingMessage);
          this.resolved++;
        }
      }),
    );
  }

  /** {@link publish}, bounded by `ctx.waitMs`; on timeout says how many publishes resolved. */
  async publishAll(ctx: CaseContext, to: Target, messages: ReadonlyArray<OutgoingMessage>): Promise<void> {
    const before = this.resolved;
    await bounded(
      ctx,
      `${messages.length} publishes by ${Math.min(this.#producers.length, messages.length)} publisher(s)`,
      this.publish(to, messages),
      () => `${this.resolved - before} of ${messages.length} resolved`,
    );
  }
}

/** `count` brokers from `ctx.connect()`. */
function connectMany(ctx: CaseContext, count: number): Promise<Broker[]> {
  return Promise.all(Array.from({ length: count }, () => ctx.connect()));
}

/** Handlers in flight at once (and the broker prefetch) per subscription where the order does not matter. */
const CONCURRENCY = 10;

const volume: ConformanceCase = {
  id: '04',
  title:
    'volume: messages from many concurrent publishers to one queue with several consumer instances are each handled exactly once',
  run: async (ctx) => {
    const publishers = ctx.count(10, 50);
    const total = ctx.count(100, 5_000);
    const instances = ctx.capabilities.competingConsumers ? ctx.count(3, 5) : 1;
    if (!ctx.capabilities.competingConsumers) {
      ctx.note('capabilities.competingConsumers is false: one consumer instance instead of several');
    }
    const q = ctx.queue('volume');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const shares = new Array<number>(instances).fill(0);
    const consumers = await connectMany(ctx, instances);
    await Promise.all(
      consumers.map((broker, i) =>
        broker.consumer().subscribe(
          q,
          (m) => {
            tally.add(m.id, flagged(m));
            shares[i] = (shares[i] ?? 0) + 1;
          },
          { concurrency: CONCURRENCY },
        ),
      ),
    );
    await new Publisher(await ctx.connect(), publishers).publishAll(ctx, q, messages);
    await waitForAll(ctx, tally, expected, `all ${total} messages to be handled by ${instances} consumer instance(s)`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(tally, expected, 'the consumer instances together');
    ctx.note(`shares per instance: ${shares.join('/')}`);
  },
};

const manyTopics: ConformanceCase = {
  id: '05a',
  title:
    'many destinations: many topics published to at once on one broker: each private subscription gets exactly the messages of its own topic',
  run: async (ctx) => {
    const topicCount = ctx.count(10, 20);
    const perTopic = ctx.count(10, 100);
    const base = ctx.topicBase('many-topics');
    const broker = await ctx.connect();
    const consumer = broker.consumer();
    const lanes = Array.from({ length: topicCount }, (_, i) => {
      const messages = numbered(perTopic);
      return {
        topic: ctx.topic(`${base}.t${i}`),
        messages,
        expected: idsOf(messages),
        tally: new Tally(),
        misrouted: [] as string[],
      };
    });
    await Promise.all(
      lanes.map((lane) =>
        consumer.subscribe(
          lane.topic,
          (m) => {
            lane.tally.add(m.id, flagged(m));
            if (m.destination.kind !== 'topic' || m.destination.name !== lane.topic.name) {
              lane.misrouted.push(`${m.id} from ${m.destination.kind} ${m.destination.name}`);
            }
          },
          { concurrency: CONCURRENCY },
        ),
      ),
    );
    // Interleaved, one publisher per topic: message i goes to topic i % topicCount.
    const interleaved = Array.from(
      { length: topicCount * perTopic },
      (_, i) => lanes[i % topicCount]?.messages[Math.floor(i / topicCount)] as OutgoingMessage,
    );
    await new Publisher(broker, topicCount).publishAll(
      ctx,
      (i) => (lanes[i % topicCount] as (typeof lanes)[number]).topic,
      interleaved,
    );
    await waitUntil(
      ctx,
      () => lanes.every((lane) => lane.tally.hasAll(lane.expected)),
      `every one of ${topicCount} topics to receive its ${perTopic} messages`,
      () =>
        lanes
          .filter((lane) => !lane.tally.hasAll(lane.expected))
          .map((lane) => `${lane.topic.name}: ${missingDetail(lane.tally, lane.expected)}`)
          .join('; '),
    );
    await observeFor(ctx.quietMs);
    for (const lane of lanes) {
      expectExactlyOnce(lane.tally, lane.expected, `subscription to ${lane.topic.name}`);
      expect(lane.misrouted, `subscription to ${lane.topic.name}: destination of its messages`).toEqual([]);
    }
  },
};

const manyDestinations: ConformanceCase = {
  id: '05b',
  title:
    'many destinations: one consumer subscribed to many queues at once receives the message of each queue from that queue',
  run: async (ctx) => {
    const count = ctx.count(25, 100);
    const broker = await ctx.connect();
    const consumer = broker.consumer();
    const run = randomUUID().slice(0, 8);
    const lanes = Array.from({ length: count }, (_, i) => ({
      // One label per queue: ctx.queue() adds only 4 random characters to the label.
      queue: ctx.queue(`dest${i}`),
      id: `${run}-q${i}`,
      received: [] as string[],
      misrouted: [] as string[],
    }));
    await bounded(
      ctx,
      `${count} subscriptions`,
      Promise.all(
        lanes.map((lane) =>
          consumer.subscribe(lane.queue, (m) => {
            lane.received.push(m.id);
            if (m.destination.kind !== 'queue' || m.destination.name !== lane.queue.name) {
              lane.misrouted.push(`${m.id} from ${m.destination.kind} ${m.destination.name}`);
            }
          }),
        ),
      ),
    );
    await new Publisher(await ctx.connect(), count).publishAll(
      ctx,
      (i) => (lanes[i] as (typeof lanes)[number]).queue,
      lanes.map((lane, n) => ({ type: TEST_TYPE, id: lane.id, data: { n } })),
    );
    const waiting = (): string[] => lanes.filter((lane) => lane.received.length === 0).map((lane) => lane.queue.name);
    await waitUntil(
      ctx,
      () => waiting().length === 0,
      `a message on each of ${count} queues`,
      () => `${waiting().length} queues received nothing, e.g. ${waiting().slice(0, 5).join(', ')}`,
    );
    await observeFor(ctx.quietMs);
    for (const lane of lanes) {
      expect(lane.received, `messages received from ${lane.queue.name}`).toEqual([lane.id]);
      expect(lane.misrouted, `destination of the messages from ${lane.queue.name}`).toEqual([]);
    }
  },
};

interface Keyed {
  readonly key: string;
  readonly seq: number;
}

const KEYS = 16;

const ordering: ConformanceCase = {
  id: '06',
  title:
    'ordering: one sequential publisher and one consumer with concurrency 1: messages arrive in publish order, per key and overall, without gaps',
  requires: ['orderedDelivery'],
  run: async (ctx) => {
    const total = ctx.count(100, 1_000);
    const q = ctx.queue('ordering');
    const run = randomUUID().slice(0, 8);
    const messages: OutgoingMessage<Keyed>[] = Array.from({ length: total }, (_, seq) => {
      const key = `k${seq % KEYS}`;
      return { type: TEST_TYPE, id: `${run}-${seq}`, key, data: { key, seq } };
    });
    const received: Array<{ readonly key: string | undefined; readonly data: Keyed }> = [];
    const consumerBroker = await ctx.connect();
    await consumerBroker.consumer().subscribe<Keyed>(q, (m) => void received.push({ key: m.key, data: m.data }), {
      concurrency: 1,
    });
    // One producer: each publish starts once the previous one resolved.
    await new Publisher(await ctx.connect(), 1).publishAll(ctx, q, messages);
    await waitUntil(
      ctx,
      () => received.length >= total,
      `all ${total} messages`,
      () => {
        const seen = new Set(received.map((r) => r.data.seq));
        const gaps = messages.filter((m) => !seen.has(m.data.seq)).map((m) => m.data.seq);
        return `${gaps.length} missing, e.g. seq ${gaps.slice(0, 5).join(', ')}`;
      },
    );
    await observeFor(ctx.quietMs);
    expect(received.length, 'deliveries (no duplicates)').toBe(total);
    expect(
      received.filter((r) => r.key !== r.data.key).map((r) => r.data.seq),
      'messages whose key did not travel',
    ).toEqual([]);
    for (let k = 0; k < KEYS; k++) {
      const key = `k${k}`;
      const got = received.filter((r) => r.data.key === key).map((r) => r.data.seq);
      const sent = messages.filter((m) => m.data.key === key).map((m) => m.data.seq);
      expect(got, `order of key ${key}`).toEqual(sent);
    }
    expect(
      received.map((r) => r.data.seq),
      'overall order',
    ).toEqual(messages.map((m) => m.data.seq));
  },
};

const backPressure: ConformanceCase = {
  id: '07',
  title:
    'back-pressure: with concurrency 1 the next message is not handed to the handler until the current one settled (back-pressure)',
  run: async (ctx) => {
    const total = ctx.count(5, 20);
    const q = ctx.queue('backpressure');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const started: string[] = [];
    const gates: Array<Deferred<void>> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let releaseAll = false;
    const broker = await ctx.connect();
    await broker.consumer().subscribe(
      q,
      async (m) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        started.push(m.id);
        const gate = deferred();
        gates.push(gate);
        if (releaseAll) gate.resolve();
        try {
          await gate.promise;
        } finally {
          inFlight--;
          tally.add(m.id, flagged(m));
        }
      },
      { concurrency: 1 },
    );
    try {
      const publisher = await ctx.connect();
      await new Publisher(publisher, 5).publishAll(ctx, q, messages);
      for (let i = 0; i < total; i++) {
        await waitUntil(
          ctx,
          () => started.length > i,
          `the handler to start on message ${i + 1} of ${total} after message ${i} was released`,
          () => `${started.length} started, ${tally.deliveries} settled, ${inFlight} in flight`,
        );
        await observeFor(ctx.quietMs);
        expect(started.length, `handlers started while message ${i + 1} was held`).toBe(i + 1);
        expect(inFlight, `handlers in flight while message ${i + 1} was held`).toBe(1);
        gates[i]?.resolve();
      }
      await waitForAll(ctx, tally, expected, `all ${total} held messages to settle`);
      await observeFor(ctx.quietMs);
      expectExactlyOnce(tally, expected, 'the consumer');
      expect(maxInFlight, 'most handlers in flight at once').toBe(1);
    } finally {
      releaseAll = true;
      for (const gate of gates) gate.resolve();
    }
  },
};

const competing: ConformanceCase = {
  id: '08',
  title:
    'competing consumers: the consumers of one queue share its messages: each handled once, and every consumer gets a share',
  requires: ['competingConsumers'],
  run: async (ctx) => {
    const instances = 3;
    const total = ctx.count(60, 300);
    const q = ctx.queue('competing');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    const shares = new Array<number>(instances).fill(0);
    const brokers = await connectMany(ctx, instances);
    await Promise.all(
      brokers.map((broker, i) =>
        broker.consumer().subscribe(q, async (m) => {
          await busy();
          tally.add(m.id, flagged(m));
          shares[i] = (shares[i] ?? 0) + 1;
        }),
      ),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, q, messages);
    await waitForAll(ctx, tally, expected, `all ${total} messages to be handled by ${instances} competing consumers`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(tally, expected, 'the competing consumers together');
    shares.forEach((share, i) =>
      expect(share, `messages handled by consumer ${i + 1} of ${instances}`).toBeGreaterThan(0),
    );
    ctx.note(`shares: ${shares.join('/')}`);
  },
};

const fanOutGroups: ConformanceCase = {
  id: '09a',
  title: 'fan-out: every subscriber group on a topic (two members each) receives every message exactly once',
  requires: ['groups'],
  run: async (ctx) => {
    const groupCount = 3;
    const members = ctx.capabilities.competingConsumers ? 2 : 1;
    if (members === 1) ctx.note('capabilities.competingConsumers is false: one member per group');
    const total = ctx.count(30, 100);
    const t = ctx.topic(`${ctx.topicBase('fanout-groups')}.event`);
    const messages = numbered(total);
    const expected = idsOf(messages);
    const groups = Array.from({ length: groupCount }, (_, g) => ({
      name: ctx.group(`fanout${g}`),
      tally: new Tally(),
      shares: new Array<number>(members).fill(0),
    }));
    const brokers = await connectMany(ctx, members);
    await Promise.all(
      brokers.flatMap((broker, member) => {
        const consumer = broker.consumer();
        return groups.map((group) =>
          consumer.subscribe(
            t,
            (m) => {
              group.tally.add(m.id, flagged(m));
              group.shares[member] = (group.shares[member] ?? 0) + 1;
            },
            { group: group.name },
          ),
        );
      }),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, t, messages);
    await waitUntil(
      ctx,
      () => groups.every((group) => group.tally.hasAll(expected)),
      `each of ${groupCount} groups to receive all ${total} messages`,
      () =>
        groups
          .filter((group) => !group.tally.hasAll(expected))
          .map((group) => `group ${group.name}: ${missingDetail(group.tally, expected)}`)
          .join('; '),
    );
    await observeFor(ctx.quietMs);
    for (const group of groups) expectExactlyOnce(group.tally, expected, `group ${group.name}`);
    ctx.note(`member shares per group: ${groups.map((group) => group.shares.join('/')).join(', ')}`);
  },
};

const fanOutPrivate: ConformanceCase = {
  id: '09b',
  title: 'fan-out: every private subscription (no group) on a topic receives every message exactly once',
  run: async (ctx) => {
    const subscribers = 2;
    const total = ctx.count(30, 100);
    const t = ctx.topic(`${ctx.topicBase('fanout-private')}.event`);
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tallies = Array.from({ length: subscribers }, () => new Tally());
    const brokers = await connectMany(ctx, subscribers);
    await Promise.all(
      brokers.map((broker, i) =>
        broker
          .consumer()
          .subscribe(t, (m) => (tallies[i] as Tally).add(m.id, flagged(m)), { concurrency: CONCURRENCY }),
      ),
    );
    const publisher = await ctx.connect();
    await new Publisher(publisher, 5).publishAll(ctx, t, messages);
    await waitUntil(
      ctx,
      () => tallies.every((tally) => tally.hasAll(expected)),
      `each of ${subscribers} private subscriptions to receive all ${total} messages`,
      () => tallies.map((tally, i) => `subscription ${i + 1}: ${missingDetail(tally, expected)}`).join('; '),
    );
    await observeFor(ctx.quietMs);
    tallies.forEach((tally, i) => expectExactlyOnce(tally, expected, `private subscription ${i + 1}`));
  },
};

const churn: ConformanceCase = {
  id: '12',
  title:
    'churn: subscribers opened and closed in batches while messages flow lose no message, and every duplicate is flagged as a redelivery',
  requires: ['durableSubscriptions'],
  run: async (ctx) => {
    const total = ctx.count(100, 5_000);
    const batches = ctx.count(2, 5);
    const publishers = ctx.count(3, 5);
    const q = ctx.queue('churn');
    const messages = numbered(total);
    const expected = idsOf(messages);
    const tally = new Tally();
    /** Messages handled by each subscriber: the first (empty queue), the batches, the last. */
    const handled: number[] = [];
    /**
     * The batch subscriber's close, started by its own handler once `at` distinct messages were handled:
     * the subscriber goes away right then, with handlers in flight and messages still coming, however
     * fast the transport is.
     */
    let trigger: { readonly subscriber: number; readonly at: number; readonly close: () => Promise<void> } | undefined;
    let closing: Tracked | undefined;
    const subscribe = (broker: Broker): Promise<Subscription> => {
      const subscriber = handled.push(0) - 1;
      return broker.consumer().subscribe(
        q,
        async (m) => {
          await busy(1);
          tally.add(m.id, flagged(m));
          handled[subscriber] = (handled[subscriber] ?? 0) + 1;
          if (trigger?.subscriber === subscriber && tally.distinct >= trigger.at) {
            closing = track(trigger.close()); // not awaited: closing waits for this handler
            trigger = undefined;
          }
        },
        { concurrency: CONCURRENCY },
      );
    };

    // Subscribe once so that the queue exists, then leave it without consumers.
    const publisher = await ctx.connect();
    const first = await subscribe(publisher);
    await bounded(ctx, 'the first subscription to close', first.close());

    const sender = new Publisher(publisher, publishers);
    const publishing = track(sender.publish(q, messages));
    const progress = (): string =>
      `${missingDetail(tally, expected)}; ${sender.resolved} of ${total} publishes resolved` +
      (publishing.failed ? ' (publishing failed)' : '') +
      `; close ${closing === undefined ? 'not started' : closing.settled ? 'done' : 'pending'}`;
    for (let b = 0; b < batches; b++) {
      const target = Math.floor((total * (b + 1)) / (batches + 1));
      const broker = await ctx.connect();
      closing = undefined;
      const subscription = await subscribe(broker);
      // Alternate the two ways a subscriber goes away: its subscription, or its whole connection.
      const close = b % 2 === 0 ? () => subscription.close() : () => broker.close();
      trigger = { subscriber: handled.length - 1, at: target, close };
      await waitUntil(
        ctx,
        () => {
          const published = publishing.check(); // a failed publish fails the case here
          if (closing === undefined && published && tally.hasAll(expected)) {
            // An earlier batch left nothing for this one: close it from here.
            trigger = undefined;
            closing = track(close());
          }
          return closing?.check() ?? false;
        },
        `batch ${b + 1} of ${batches} to handle messages up to ${target} distinct, then ${b % 2 === 0 ? 'subscription' : 'broker'}.close()`,
        progress,
      );
    }

    await subscribe(await ctx.connect());
    await waitUntil(
      ctx,
      () => publishing.check() && tally.hasAll(expected),
      `the last subscriber to drain the remaining messages (all ${total})`,
      progress,
    );
    await observeFor(ctx.quietMs);
    expect(tally.missing(expected), 'messages lost').toEqual([]);
    expect(tally.unexpected(expected), 'messages that were never sent').toEqual([]);
    expect(tally.unflaggedDuplicates, 'duplicates without redelivered / attempt > 1').toBe(0);
    ctx.note(`${tally.duplicates} duplicate(s), all flagged; handled per batch: ${handled.slice(1).join('/')}`);
  },
};

const concurrentClose: ConformanceCase = {
  id: '13',
  title:
    'concurrent close: ten subscriptions closed concurrently stop receiving, and a new subscriber then gets every new message',
  run: async (ctx) => {
    const subscriptionCount = 10;
    const after = ctx.count(20, 50);
    const competingConsumers = ctx.capabilities.competingConsumers;
    if (!competingConsumers) {
      ctx.note('capabilities.competingConsumers is false: the ten subscriptions use ten queues');
    }
    const shared = ctx.queue('close');
    const queues = Array.from({ length: subscriptionCount }, (_, i) =>
      competingConsumers || i === 0 ? shared : ctx.queue(`close${i}`),
    );
    const brokers = await connectMany(ctx, 3);
    const counts = new Array<number>(subscriptionCount).fill(0);
    const before = new Tally();
    const subscriptions = await bounded(
      ctx,
      `${subscriptionCount} subscriptions created at once`,
      Promise.all(
        queues.map((q, i) =>
          (brokers[i % brokers.length] as Broker).consumer().subscribe(q, (m) => {
            counts[i] = (counts[i] ?? 0) + 1;
            before.add(m.id, flagged(m));
          }),
        ),
      ),
    );
    const publisher = new Publisher(await ctx.connect(), 5);
    const first = numbered(subscriptionCount);
    const firstIds = idsOf(first);
    await publisher.publishAll(ctx, (i) => queues[i] as Queue, first);
    await waitForAll(ctx, before, firstIds, `the first ${subscriptionCount} messages to be handled`);

    await bounded(
      ctx,
      `${subscriptionCount} concurrent subscription.close()`,
      Promise.all(subscriptions.map((subscription) => subscription.close())),
    );
    const countsAtClose = [...counts];

    const fresh = new Tally();
    await (brokers[0] as Broker).consumer().subscribe(shared, (m) => fresh.add(m.id, flagged(m)));
    const next = numbered(after);
    const nextIds = idsOf(next);
    await publisher.publishAll(ctx, shared, next);
    await waitForAll(ctx, fresh, nextIds, `the new subscriber to receive all ${after} new messages`);
    await observeFor(ctx.quietMs);
    expectExactlyOnce(before, firstIds, 'the ten subscriptions before closing');
    expectExactlyOnce(fresh, nextIds, 'the new subscriber');
    expect(counts, 'messages handled per subscription: none after it closed').toEqual(countsAtClose);
  },
};

/** Cases 04–13 of docs/conformance.md that are about volume, fan-out, order and subscription churn. */
export const VOLUME_CASES: readonly ConformanceCase[] = [
  volume,
  manyTopics,
  manyDestinations,
  ordering,
  backPressure,
  competing,
  fanOutGroups,
  fanOutPrivate,
  churn,
  concurrentClose,
];
