import type { CaseContext, ConformanceCase } from '../types.js';
import {
  type ConsumeMiddleware,
  describeDestination,
  ErrorCode,
  FerryError,
  HEADER_DEAD_LETTER_CODE,
  idempotency,
  MemoryIdempotencyStore,
} from '@ferry/core';
import { performance } from 'node:perf_hooks';
import { expect } from 'vitest';
import { deferred, observeFor, Tally } from '../helpers.js';
import { busy, fastRetry, idsOf, numbered, publishAll, TEST_TYPE } from './common.js';
import {
  run,
  bump,
  watchDeadLetters,
  describeDead,
  expectDeadLetter,
  waitForAll,
  CountedEvent,
  OTHER_TYPE,
} from './failure-support.js';

// 19a
async function concurrencyLimit(ctx: CaseContext): Promise<void> {
  const concurrency = 4;
  const broker = await ctx.connect();
  const q = ctx.queue('concurrency');
  const messages = numbered(ctx.count(20, 40));
  const ids = idsOf(messages);
  const handled = new Tally();
  let inFlight = 0;
  let maxInFlight = 0;
  let started = 0;
  let wave = 0;
  let stuck: Error | undefined;
  await broker.consumer().subscribe(
    q,
    async (m) => {
      inFlight++;
      started++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        // Hold until every slot is taken (or nothing more can come), then let the whole wave go.
        if (inFlight >= concurrency || started >= messages.length) wave++;
        else {
          const mine = wave;
          // Half the case's patience, so that the case fails with this reason rather than a bare timeout.
          await ctx
            .waitFor(() => wave > mine || m.signal.aborted, `${concurrency} handlers in flight at once`, ctx.waitMs / 2)
            .catch((error: unknown) => {
              stuck ??= error instanceof Error ? error : new Error(String(error));
              throw error;
            });
        }
        await busy();
      } finally {
        inFlight--;
      }
      handled.add(m.id, m.redelivered);
    },
    { concurrency },
  );
  await publishAll(broker.producer(), q, messages, 4);
  await ctx.waitFor(() => {
    if (stuck !== undefined) throw stuck;
    return handled.hasAll(ids);
  }, `all ${ids.size} messages`);
  expect(maxInFlight, 'most handlers in flight at once').toBe(concurrency);
  expect(handled.duplicates).toBe(0);
  expect(handled.unexpected(ids)).toEqual([]);
}

// 19b
async function handlerTimeout(ctx: CaseContext): Promise<void> {
  const timeoutMs = 100;
  const broker = await ctx.connect();
  const q = ctx.queue('hung');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const r = run();
  const hung = new Set([`hung-${r}-1`, `hung-${r}-2`]);
  const next = numbered(ctx.count(5, 20));
  const nextIds = idsOf(next);
  const release = deferred();
  const hungCalls = new Map<string, number>();
  const aborts: Array<{ id: string; reason: unknown; afterMs: number }> = [];
  const handled = new Tally();
  let running = 0;
  let mostRunningWhileNextRan = 0;
  await consumer.subscribe(
    q,
    async (m) => {
      running++;
      try {
        if (hung.has(m.id)) {
          bump(hungCalls, m.id);
          const startedAt = performance.now();
          const signal = m.signal;
          const onAbort = (): void =>
            void aborts.push({ id: m.id, reason: signal.reason, afterMs: performance.now() - startedAt });
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
          // Ignores its signal, like a handler stuck on I/O without a timeout: settles only after the case.
          await release.promise;
          return;
        }
        mostRunningWhileNextRan = Math.max(mostRunningWhileNextRan, running);
        await busy();
        handled.add(m.id, m.redelivered);
      } finally {
        running--;
      }
    },
    { concurrency: 1, handlerTimeoutMs: timeoutMs, retry: fastRetry(1) },
  );
  try {
    const since = Date.now();
    const producer = broker.producer();
    for (const id of hung) await producer.publish(q, { type: TEST_TYPE, id, data: { hung: true } });
    await publishAll(producer, q, next);
    await waitForAll(ctx, handled, nextIds, 'the messages after the hung ones (their slot freed)');
    await ctx.waitFor(() => dead.length >= hung.size, 'the dead letters of the timed-out handlers');
    await observeFor(ctx.quietMs);
    expect(dead.map((d) => d.id).sort(), 'dead letters: the hung messages, once each').toEqual([...hung].sort());
    for (const d of dead) {
      expectDeadLetter(d, {
        code: ErrorCode.HANDLER_TIMEOUT,
        attempts: 1,
        origin: describeDestination(q),
        since,
        reason: `${timeoutMs} ms`,
      });
    }
    expect([...hungCalls.values()], 'calls per hung message (maxAttempts 1)').toEqual([1, 1]);
    expect(aborts.map((a) => a.id).sort(), 'message.signal aborted for each hung handler').toEqual([...hung].sort());
    for (const a of aborts) {
      expect(a.reason).toBeInstanceOf(FerryError);
      expect((a.reason as FerryError).code).toBe(ErrorCode.HANDLER_TIMEOUT);
      // Node timers never fire early; a millisecond of slack for clock granularity.
      expect(a.afterMs).toBeGreaterThanOrEqual(timeoutMs - 1);
    }
    expect(handled.unexpected(nextIds)).toEqual([]);
    // JavaScript cannot stop a handler: the timed-out ones still run.
    expect(running).toBe(hung.size);
    ctx.note(
      `with concurrency 1, up to ${mostRunningWhileNextRan} handlers ran at once while the next messages ran (${hung.size} timed out but still running)`,
    );
  } finally {
    release.resolve();
  }
}

// 24
async function idempotentAcrossInstances(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('idempotent');
  const messages = numbered(20);
  const ids = idsOf(messages);
  // Copies of one id back to back, so that both instances get them at the same moment.
  const copies = messages.flatMap((m) => [m, m, m]);
  const store = new MemoryIdempotencyStore();
  const calls = new Map<string, number>();
  // Two instances share the queue where the broker lets consumers compete; otherwise one instance still dedups.
  const perInstance = ctx.capabilities.competingConsumers ? [0, 0] : [0];
  let settled = 0;
  let inProgress = 0;
  // Outermost: counts copies that finished (handled, or acked as already done) and claims found held.
  const count: ConsumeMiddleware = async (_ctx, next) => {
    try {
      await next();
      settled++;
    } catch (error) {
      if (error instanceof FerryError && error.code === ErrorCode.IN_PROGRESS) inProgress++;
      throw error;
    }
  };
  const publisher = await ctx.connect();
  const dead = await watchDeadLetters(publisher.consumer(), q);
  for (let instance = 0; instance < perInstance.length; instance++) {
    const broker = await ctx.connect();
    await broker.consumer({ middleware: [count, idempotency({ store })] }).subscribe(
      q,
      async (m) => {
        bump(calls, m.id);
        perInstance[instance] = perInstance[instance]! + 1;
        await busy(5);
      },
      { concurrency: 4, retry: fastRetry(20) },
    );
  }
  await publishAll(publisher.producer(), q, copies, 4);
  await ctx.waitFor(() => settled + dead.length >= copies.length, `${copies.length} copies settled`);
  await observeFor(ctx.quietMs);
  expect(describeDead(dead)).toEqual([]);
  expect(settled).toBe(copies.length);
  expect([...calls.keys()].sort()).toEqual([...ids].sort());
  for (const [id, n] of calls) expect(n, `handler calls for ${id}`).toBe(1);
  ctx.note(
    `handler calls per instance: ${perInstance.join(' + ')}; ${copies.length - ids.size} copies acked as done; ${inProgress} found the claim held and were retried`,
  );
}

// 26
async function unhandledNeverStalls(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const consumer = broker.consumer();
  const producer = broker.producer();

  // (a) A contract subscription with concurrency 1 gets messages of another type mixed in.
  const t = ctx.topic(`${ctx.topicBase('mixed')}.events`);
  const dead = await watchDeadLetters(consumer, t);
  const handled = new Tally();
  await consumer.subscribe(t, CountedEvent, (m) => void handled.add(m.id, m.redelivered), {
    concurrency: 1,
    retry: fastRetry(3),
  });
  const count = 20;
  const r = run();
  const wanted = Array.from({ length: count }, (_, n) => CountedEvent.create({ n }, { id: `a-${r}-${n}` }));
  const unwanted = Array.from({ length: count }, (_, n) => ({ type: OTHER_TYPE, id: `b-${r}-${n}`, data: { n } }));
  const wantedIds = idsOf(wanted);
  for (let n = 0; n < count; n++) {
    await producer.publish(t, unwanted[n]!);
    await producer.publish(t, wanted[n]!);
  }
  await waitForAll(ctx, handled, wantedIds, `all ${count} messages of the subscribed type`);
  await ctx.waitFor(() => dead.length >= count, `${count} dead letters of the other type`);
  await observeFor(ctx.quietMs);
  expect(handled.unexpected(wantedIds)).toEqual([]);
  expect(handled.duplicates).toBe(0);
  expect(dead.map((d) => d.id).sort(), 'dead letters: every other-type message, once').toEqual(
    unwanted.map((m) => m.id).sort(),
  );
  for (const d of dead) expect(d.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.VALIDATION);

  // (b) Messages waiting on a queue nobody here consumes do not hold up another queue of the same consumer.
  const orphan = ctx.queue('orphan');
  const served = ctx.queue('served');
  let orphanCalls = 0;
  // Declared by subscribing once (brokers that keep messages only for known subscriptions), then abandoned.
  const declared = await consumer.subscribe(orphan, () => void orphanCalls++);
  await declared.close();
  const handledServed = new Tally();
  await consumer.subscribe(served, (m) => void handledServed.add(m.id, m.redelivered));
  await publishAll(producer, orphan, numbered(100), 4);
  const toServe = numbered(20);
  const servedIds = idsOf(toServe);
  await publishAll(producer, served, toServe, 4);
  await waitForAll(ctx, handledServed, servedIds, `all ${servedIds.size} messages of the served queue`);
  expect(handledServed.unexpected(servedIds)).toEqual([]);
  expect(orphanCalls).toBe(0);
}

/** Cases 19, 24 and 26: concurrency limits, handler timeouts, idempotency and messages nobody handles. */
export const CONCURRENCY_CASES: readonly ConformanceCase[] = [
  {
    id: '19a',
    title: 'concurrency: with concurrency 4, never more than 4 handlers run at once, and 4 do',
    run: concurrencyLimit,
  },
  {
    id: '19b',
    title:
      'timeout: a handler that never settles is timed out after handlerTimeoutMs: its message.signal aborts, the attempt fails (dead letter FERRY_HANDLER_TIMEOUT) and its slot goes to the next messages',
    run: handlerTimeout,
  },
  {
    id: '24',
    title:
      'idempotency: every message published 3 times with the same id, consumed by two instances sharing one idempotency store, runs the handler exactly once',

    run: idempotentAcrossInstances,
  },
  {
    id: '26',
    title:
      'a message nobody handles never stalls the others: other-type messages on a concurrency-1 contract subscription are dead-lettered while its own type flows, and messages waiting on an unconsumed queue do not hold up another queue',
    run: unhandledNeverStalls,
  },
];
