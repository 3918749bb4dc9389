import { ErrorCode, FerryError, type Message, PublishError, REDACTED } from '@ferry/core';
import { expect } from 'vitest';
import { inParallel, observeFor, rejection, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { busy, idsOf, numbered, publishAll, TEST_TYPE } from './common.js';
import { publishWithRetry, whenDown, whenUp } from './lifecycle-support.js';

async function publishAcceptedSurvivesDrop(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('accepted');
  const publisher = await ctx.connect();
  const messages = numbered(ctx.count(50, 1000));
  await publishAll(publisher.producer(), q, messages, 10);
  await ctx.faults.dropConnections!();
  const consumer = await ctx.connect();
  const tally = new Tally();
  await consumer.consumer().subscribe(q, (m) => tally.add(m.id, m.redelivered), { concurrency: 10 });
  await ctx.waitFor(() => tally.hasAll(idsOf(messages)), 'every accepted publish after the connections dropped');
}

/** Publishes `messages` from `publishers` parallel publishers with retry, calling `fault` at 1/3 and 1/2 of them. */
async function publishThroughFaults(
  ctx: CaseContext,
  fault: () => Promise<void>,
  label: string,
): Promise<{ resolved: Set<string>; queueTally: Tally; groupTally: Tally }> {
  const q = ctx.queue(label);
  const t = ctx.topic(`${ctx.topicBase(label)}.event`);
  const group = ctx.group('faults');
  const consumer = await ctx.connect();
  const queueTally = new Tally();
  const groupTally = new Tally();
  const flagged = (m: Message): boolean => m.redelivered || m.attempt > 1;
  await consumer.consumer().subscribe(q, (m) => queueTally.add(m.id, flagged(m)), { concurrency: 20 });
  // Without groups (RabbitMQ's MQTT plugin) every message goes to the queue: a private subscription
  // promises nothing across a lost connection.
  const groups = ctx.capabilities.groups;
  if (groups) {
    await consumer.consumer().subscribe(t, (m) => groupTally.add(m.id, flagged(m)), { group, concurrency: 20 });
  }
  const publisher = await ctx.connect();
  const producer = publisher.producer();
  const messages = numbered(ctx.count(300, 10_000));
  const resolved = new Set<string>();
  const marks = new Set([Math.floor(messages.length / 3), Math.floor(messages.length / 2)]);
  const faults: Promise<void>[] = [];
  await inParallel(messages.length, ctx.count(10, 100), async (i) => {
    if (marks.has(i)) faults.push(fault());
    const m = messages[i]!;
    await publishWithRetry(producer, i % 2 === 0 || !groups ? q : t, m);
    resolved.add(m.id!);
    await busy(1);
  });
  await Promise.all(faults);
  return { resolved, queueTally, groupTally };
}

async function survivesFaults(ctx: CaseContext, fault: () => Promise<void>, label: string): Promise<void> {
  const started = Date.now();
  const { resolved, queueTally, groupTally } = await publishThroughFaults(ctx, fault, label);
  const received = (): number => [...resolved].filter((id) => queueTally.count(id) + groupTally.count(id) > 0).length;
  await ctx.waitFor(
    () => received() === resolved.size,
    `every resolved publish after the faults (missing ${[...resolved]
      .filter((id) => queueTally.count(id) + groupTally.count(id) === 0)
      .slice(0, 5)
      .join(', ')})`,
  );
  const all = new Set(resolved);
  expect(queueTally.unexpected(all)).toEqual([]);
  expect(groupTally.unexpected(all)).toEqual([]);
  const duplicates = queueTally.duplicates + groupTally.duplicates;
  const unflagged = queueTally.unflaggedDuplicates + groupTally.unflaggedDuplicates;
  ctx.note(
    `${resolved.size} messages in ${Date.now() - started} ms; ${duplicates} duplicates (${unflagged} not flagged redelivered, each with an id already delivered)`,
  );
}

/** How long a restart keeps the broker down, ms: long enough for every client to notice and queue up work. */
const RESTART_DOWNTIME_MS = 250;

async function restart(ctx: CaseContext): Promise<void> {
  await ctx.faults.stopBroker!();
  try {
    await observeFor(RESTART_DOWNTIME_MS);
  } finally {
    await ctx.faults.startBroker!();
  }
}

async function publishDuringOutage(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('outage');
  const consumerBroker = await ctx.connect();
  const tally = new Tally();
  await consumerBroker.consumer().subscribe(q, (m) => tally.add(m.id, m.redelivered), { concurrency: 5 });
  const publishTimeout = 1_000 * ctx.profile.timeoutFactor;
  const broker = await ctx.connect({ publishTimeout });
  await ctx.faults.stopBroker!();
  try {
    await whenDown(ctx, broker, 'the producer');
    // Times out with a typed error within publishTimeout (plus slack), never hangs.
    const started = Date.now();
    const error = await rejection(broker.producer().publish(q, { type: TEST_TYPE, id: `timeout-${q.name}`, data: 0 }));
    const waited = Date.now() - started;
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: ErrorCode.PUBLISH_TIMEOUT });
    expect(waited).toBeGreaterThanOrEqual(publishTimeout - 50);
    expect(waited).toBeLessThan(publishTimeout + 2_000 * ctx.profile.timeoutFactor);
    ctx.note(`a publish during the outage failed after ${waited} ms (publishTimeout ${publishTimeout} ms)`);
    // The buffer is bounded: past maxPendingPublishes a publish fails at once with FERRY_OVERFLOW.
    const bounded = broker.producer({ maxPendingPublishes: 5, publishTimeout: 60_000 });
    const waiting = numbered(5);
    const pending = waiting.map((m) => bounded.publish(q, m));
    const overflow = await rejection(bounded.publish(q, { type: TEST_TYPE, data: 'sixth' }));
    expect(overflow).toMatchObject({ code: ErrorCode.OVERFLOW });
    let settled = 0;
    for (const p of pending)
      void p.then(
        () => settled++,
        () => settled++,
      );
    await observeFor(ctx.quietMs);
    expect(settled, 'publishes must wait while the broker is down, not resolve').toBe(0);
    await ctx.faults.startBroker!();
    await Promise.all(pending);
    await ctx.waitFor(() => tally.hasAll(idsOf(waiting)), 'the publishes buffered during the outage');
    expect(tally.count(`timeout-${q.name}`), 'a publish that failed is not delivered behind the caller’s back').toBe(0);
  } finally {
    await ctx.faults.startBroker!();
  }
}

async function subscriptionsBeforeBufferedPublishes(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ publishTimeout: 60_000 });
  const t = ctx.topic(`${ctx.topicBase('restore')}.event`);
  const q = ctx.queue('restore');
  const group = ctx.group('restore');
  const privateTally = new Tally();
  const groupTally = new Tally();
  const queueTally = new Tally();
  const consumer = broker.consumer();
  await consumer.subscribe(t, (m) => privateTally.add(m.id));
  if (ctx.capabilities.groups) await consumer.subscribe(t, (m) => groupTally.add(m.id), { group });
  await consumer.subscribe(q, (m) => queueTally.add(m.id));
  await ctx.faults.stopBroker!();
  let pending: Promise<void>[] | undefined;
  const toTopic = numbered(ctx.count(20, 200));
  const toQueue = numbered(ctx.count(20, 200));
  try {
    await whenDown(ctx, broker, 'the broker');
    const producer = broker.producer();
    pending = [...toTopic.map((m) => producer.publish(t, m)), ...toQueue.map((m) => producer.publish(q, m))];
  } finally {
    await ctx.faults.startBroker!();
  }
  await Promise.all(pending ?? []);
  await ctx.waitFor(
    () =>
      privateTally.hasAll(idsOf(toTopic)) &&
      (!ctx.capabilities.groups || groupTally.hasAll(idsOf(toTopic))) &&
      queueTally.hasAll(idsOf(toQueue)),
    `the buffered publishes on every restored subscription (private missing ${privateTally.missing(idsOf(toTopic), 3).join(', ')})`,
  );
}

async function healthFollowsState(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const health = broker.health();
  expect(health.status).toBe('up');
  expect(health.transport).toBe(broker.transport);
  expect(Number.isNaN(Date.parse(health.since))).toBe(false);
  const credentials = /\/\/[^/@]*:([^/@]*)@/.exec(health.url);
  if (credentials !== null) expect(decodeURIComponent(credentials[1]!)).toBe(REDACTED);
  const events: string[] = [];
  const statusAt: Record<string, string> = {};
  broker.on('disconnected', (error) => {
    events.push('disconnected');
    statusAt['disconnected'] = broker.health().status;
    expect(error).toBeInstanceOf(FerryError);
  });
  broker.on('reconnecting', (attempt, delayMs) => {
    events.push('reconnecting');
    expect(attempt).toBeGreaterThanOrEqual(1);
    expect(delayMs).toBeGreaterThanOrEqual(0);
  });
  broker.on('connected', () => {
    events.push('connected');
    statusAt['connected'] = broker.health().status;
  });
  await ctx.faults.dropConnections!();
  await ctx.waitFor(() => events.includes('connected'), 'the connected event after the drop');
  expect(events[0]).toBe('disconnected');
  expect(events.at(-1)).toBe('connected');
  expect(events.slice(1, -1).every((e) => e === 'reconnecting')).toBe(true);
  expect(statusAt).toEqual({ disconnected: 'reconnecting', connected: 'up' });
  expect(broker.health().status).toBe('up');
  expect(broker.health().lastError?.code).toMatch(/^FERRY_/);
  if (ctx.faults.stopBroker !== undefined && ctx.faults.startBroker !== undefined) {
    await ctx.faults.stopBroker();
    try {
      await whenDown(ctx, broker, 'health()');
      await observeFor(ctx.quietMs);
      expect(broker.health().status).toBe('reconnecting');
    } finally {
      await ctx.faults.startBroker();
    }
    await whenUp(ctx, broker, 'health()');
  }
  await broker.close();
  expect(broker.health().status).toBe('down');
}

/** Cases 11, 18, 20, 21d, 22, 23 and 25: durability, crashes, closing, outages and health. */

/** Cases 21d, 22, 23 and 25: dropped connections, restarts and outages (the exclusive fault cases). */
export const OUTAGE_CASES: readonly ConformanceCase[] = [
  {
    id: '21d',
    title:
      'producers: publish resolves only once the broker accepted: every resolved publish survives a connection drop',
    requires: ['durableQueues'],
    hooks: ['dropConnections'],
    exclusive: true,
    run: publishAcceptedSurvivesDrop,
  },
  {
    id: '22a',
    title:
      'connections dropped at 1/3 and 1/2 of a run from parallel publishers: everything resolved is delivered, duplicates carry a delivered id',
    hooks: ['dropConnections'],
    exclusive: true,
    run: (ctx) => survivesFaults(ctx, () => ctx.faults.dropConnections!(), 'drop'),
  },
  {
    id: '22b',
    title:
      'broker restarted at 1/3 and 1/2 of a run from parallel publishers: producers and consumers recover, nothing resolved is lost',
    hooks: ['stopBroker', 'startBroker'],
    exclusive: true,
    run: (ctx) => survivesFaults(ctx, () => restart(ctx), 'restart'),
  },
  {
    id: '23a',
    title:
      'publishes while the broker is down: reject with FERRY_PUBLISH_TIMEOUT within publishTimeout or resolve once it returns; the buffer is bounded',
    hooks: ['stopBroker', 'startBroker'],
    exclusive: true,
    run: publishDuringOutage,
  },
  {
    id: '23b',
    title:
      'after an outage, subscriptions (private, group, queue) are restored before buffered publishes go out: none of them misses one',
    hooks: ['stopBroker', 'startBroker'],
    exclusive: true,
    run: subscriptionsBeforeBufferedPublishes,
  },
  {
    id: '25',
    title: 'health() and the disconnected / reconnecting / connected events follow the real connection state',
    hooks: ['dropConnections'],
    exclusive: true,
    run: healthFollowsState,
  },
];
