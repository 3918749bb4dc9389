import type amqp from 'amqplib';
import {
  type Broker,
  type ConnectOptions,
  ErrorCode,
  type FerryError,
  type Logger,
  PublishError,
  queue,
  topic,
} from '@ferry/core';
import { deferred, observeFor, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { retryBucket } from '../src/index.js';
import { connectAmqp, isolatedBroker, rabbitmqctl } from './broker.js';
import { admin, check, closeAdmin, deleteQueues } from './admin.js';

/**
 * How messages are delivered, acknowledged, retried and dead-lettered on the real RabbitMQ
 * (reliability-anchors §1.1; F7 unknown delivery tag, F9 consumer cancelled, F11 poison messages).
 */

interface QueueStats {
  readonly name: string;
  readonly messages_ready: number;
  readonly messages_unacknowledged: number;
  readonly consumers: number;
  readonly arguments: ReadonlyArray<readonly [string, string, unknown]>;
}

/** What the broker itself counts for a queue (rabbitmqctl list_queues); undefined when it does not exist. */
async function stats(name: string): Promise<QueueStats | undefined> {
  const out = await rabbitmqctl(
    'list_queues',
    '-q',
    '--formatter',
    'json',
    'name',
    'messages_ready',
    'messages_unacknowledged',
    'consumers',
    'arguments',
  );
  return (JSON.parse(out) as QueueStats[]).find((r) => r.name === name);
}

function describeStats(s: QueueStats | undefined): string {
  return s === undefined
    ? 'no such queue'
    : `ready=${s.messages_ready} unacked=${s.messages_unacknowledged} consumers=${s.consumers}`;
}

/** Reads every message of a queue with a plain amqplib consumer (no Ferry), waiting for `count` of them. */
async function drainRaw(name: string, count: number): Promise<amqp.ConsumeMessage[]> {
  const channel = await (await admin()).createChannel();
  const got: amqp.ConsumeMessage[] = [];
  try {
    await channel.consume(name, (m) => void (m !== null && got.push(m)), { noAck: true });
    await waitFor(
      () => got.length >= count,
      10_000,
      () => `${count} messages on ${name} (got ${got.length})`,
    );
  } finally {
    await channel.close();
  }
  return got;
}

const brokers: Broker[] = [];
const queues = new Set<string>();

/** Connects Ferry; the broker is closed after the test. */
async function ferry(options: ConnectOptions = {}): Promise<Broker> {
  const broker = await connectAmqp(options);
  brokers.push(broker);
  return broker;
}

/** Registers queues to delete after the test; returns the first name. */
function own(name: string, ...more: string[]): string {
  for (const n of [name, ...more]) queues.add(n);
  return name;
}

afterEach(async () => {
  // Brokers first: a live subscription would re-declare a queue deleted under it.
  await Promise.allSettled(brokers.splice(0).map((b) => b.close()));
  await deleteQueues(queues);
  queues.clear();
});

afterAll(async () => {
  await closeAdmin();
});

describe('amqp delivery: prefetch and acknowledgements', () => {
  it('prefetch = concurrency: with concurrency 3 and held handlers, exactly 3 messages are unacked at the broker', async () => {
    const name = own(uniqueName('dlv-prefetch'));
    own(`${name}.dlq`);
    const q = queue(name);
    const broker = await ferry();
    const producer = broker.producer();
    for (let i = 0; i < 10; i++) await producer.publish(q, { type: 'dlv.prefetch', data: i });

    const release = deferred();
    const started: number[] = [];
    const done: number[] = [];
    let active = 0;
    let peak = 0;
    await broker.consumer().subscribe<number>(
      q,
      async (m) => {
        started.push(m.data);
        peak = Math.max(peak, ++active);
        await release.promise;
        active--;
        done.push(m.data);
      },
      { concurrency: 3 },
    );
    await waitFor(() => started.length === 3, 10_000, 'three handlers to start');
    let last: QueueStats | undefined;
    await waitFor(
      async () => {
        last = await stats(name);
        return last?.messages_unacknowledged === 3 && last.messages_ready === 7;
      },
      15_000,
      () => `3 unacked and 7 ready at the broker (${describeStats(last)})`,
    );
    await observeFor(300); // no fourth handler starts while three are held
    expect(started).toEqual([0, 1, 2]);
    expect(await stats(name)).toMatchObject({ messages_ready: 7, messages_unacknowledged: 3, consumers: 1 });

    release.resolve();
    await waitFor(
      () => done.length === 10,
      10_000,
      () => `all 10 handled (${done.length})`,
    );
    expect(peak).toBe(3);
    expect([...done].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await waitFor(
      async () => {
        last = await stats(name);
        return last?.messages_unacknowledged === 0 && last.messages_ready === 0;
      },
      15_000,
      () => `an empty queue (${describeStats(last)})`,
    );
  });

  it('acks only after the handler settled: a held message stays unacked at the broker, then leaves', async () => {
    const name = own(uniqueName('dlv-ack'));
    own(`${name}.dlq`);
    const q = queue(name);
    const broker = await ferry();
    const release = deferred();
    let started = false;
    let finished = false;
    await broker.consumer().subscribe(q, async () => {
      started = true;
      await release.promise;
      finished = true;
    });
    await broker.producer().publish(q, { type: 'dlv.ack', data: 'held' });
    await waitFor(() => started, 10_000, 'the handler to start');
    let last: QueueStats | undefined;
    await waitFor(
      async () => {
        last = await stats(name);
        return last?.messages_unacknowledged === 1 && last.messages_ready === 0;
      },
      15_000,
      () => `1 unacked message while the handler runs (${describeStats(last)})`,
    );
    await observeFor(300); // nothing acks it early
    expect(await stats(name)).toMatchObject({ messages_ready: 0, messages_unacknowledged: 1 });

    release.resolve();
    await waitFor(() => finished, 10_000, 'the handler to return');
    await waitFor(
      async () => {
        last = await stats(name);
        return last?.messages_unacknowledged === 0 && last.messages_ready === 0;
      },
      15_000,
      () => `the ack to reach the broker (${describeStats(last)})`,
    );
  });
});

describe('amqp delivery: retries and dead letters', () => {
  it('a retry waits in a <q>.retry.<ms> delay queue that survives the consumer; a new consumer gets it as attempt 2, redelivered', async () => {
    const name = own(uniqueName('dlv-retry'));
    const bucket = retryBucket(1_500);
    const delayQueue = own(`${name}.retry.${bucket}`, `${name}.dlq`);
    const q = queue(name);
    const retry = { maxAttempts: 3, initialDelayMs: 1_500, jitter: 0 };
    const id = uniqueName('retry-id');

    const first = await ferry();
    const firstSeen: number[] = [];
    await first.consumer().subscribe(
      q,
      (m) => {
        firstSeen.push(m.attempt);
        if (m.attempt === 1) throw new Error('attempt 1 fails');
      },
      { retry },
    );
    await first.producer().publish(q, { type: 'dlv.retry', id, data: { order: 7 } });
    let delayed: { messageCount: number } | undefined;
    await waitFor(
      async () => (delayed = await check(delayQueue))?.messageCount === 1,
      5_000,
      () => `the retry copy in ${delayQueue} (${JSON.stringify(delayed)})`,
    );
    expect(firstSeen).toEqual([1]);
    await first.close();

    // Nobody consumes now: RabbitMQ alone moves the copy back after the delay, and the original was acked.
    const row = await stats(delayQueue);
    expect(Object.fromEntries((row?.arguments ?? []).map(([k, , v]) => [k, v]))).toMatchObject({
      'x-message-ttl': bucket,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': name,
    });
    let main: { messageCount: number; consumerCount: number } | undefined;
    await waitFor(
      async () => {
        main = await check(name);
        delayed = await check(delayQueue);
        return main?.messageCount === 1 && delayed?.messageCount === 0;
      },
      10_000,
      () => `the copy back in ${name} (main ${JSON.stringify(main)}, delay ${JSON.stringify(delayed)})`,
    );
    expect(main?.consumerCount).toBe(0);

    const second = await ferry();
    const got: Array<{ id: string; attempt: number; redelivered: boolean; data: unknown }> = [];
    await second
      .consumer()
      .subscribe(q, (m) => void got.push({ id: m.id, attempt: m.attempt, redelivered: m.redelivered, data: m.data }), {
        retry,
      });
    await waitFor(() => got.length === 1, 10_000, 'the retry copy at the new consumer');
    await observeFor(500); // no second copy
    expect(got).toEqual([{ id, attempt: 2, redelivered: true, data: { order: 7 } }]);
    expect(firstSeen).toEqual([1]);
    await waitFor(async () => (await check(name))?.messageCount === 0, 5_000, 'the retry copy to be acked');
  });

  it("a group's retry copy goes back to that group only: other groups and private subscriptions see the message once", async () => {
    const base = uniqueName('dlv-groups');
    const t = topic(base);
    const bucket = retryBucket(100);
    own(`${base}.a`, `${base}.b`, `${base}.a.retry.${bucket}`, `${base}.a.dlq`, `${base}.b.dlq`);
    const broker = await ferry();
    const consumer = broker.consumer();
    const a: number[] = [];
    const b: number[] = [];
    const solo: number[] = [];
    await consumer.subscribe(
      t,
      (m) => {
        a.push(m.attempt);
        if (m.attempt === 1) throw new Error('group a fails once');
      },
      { group: 'a', retry: { maxAttempts: 3, initialDelayMs: 100, jitter: 0 } },
    );
    await consumer.subscribe(t, (m) => void b.push(m.attempt), { group: 'b' });
    await consumer.subscribe(t, (m) => void solo.push(m.attempt));
    await broker.producer().publish(t, { type: 'dlv.groups', data: 1 });
    await waitFor(
      () => a.length === 2,
      10_000,
      () => `group a's retry (a=${JSON.stringify(a)})`,
    );
    await observeFor(1_000); // time for a stray copy to reach b or the private subscription
    expect(a).toEqual([1, 2]);
    expect(b).toEqual([1]);
    expect(solo).toEqual([1]);
  });

  it('retries exhausted: the message goes to <q>.dlq with ferry-dead-letter-* headers a plain AMQP consumer can read', async () => {
    const name = own(uniqueName('dlv-dlq'));
    const dlq = own(`${name}.dlq`, `${name}.retry.${retryBucket(10)}`);
    const q = queue(name);
    const broker = await ferry();
    const attempts: number[] = [];
    await broker.consumer().subscribe(
      q,
      (m) => {
        attempts.push(m.attempt);
        throw new Error(`boom on attempt ${m.attempt}`);
      },
      { retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 } },
    );
    const id = uniqueName('dead-id');
    await broker.producer().publish(q, {
      type: 'dlv.dead',
      id,
      data: { n: 1 },
      headers: { 'x-app': 'kept' },
    });
    await waitFor(async () => (await check(dlq))?.messageCount === 1, 15_000, `a dead letter in ${dlq}`);
    expect(attempts).toEqual([1, 2]);

    const [dead] = await drainRaw(dlq, 1);
    const headers = dead!.properties.headers as Record<string, unknown>;
    expect(headers).toMatchObject({
      'ferry-dead-letter-reason': 'boom on attempt 2',
      'ferry-dead-letter-code': ErrorCode.HANDLER_FAILED,
      'ferry-dead-letter-attempts': '2',
      'ferry-dead-letter-origin': `queue:${name}`,
      'ce-id': id,
      'ce-type': 'dlv.dead',
      'x-app': 'kept',
    });
    expect(Number.isNaN(Date.parse(String(headers['ferry-dead-letter-time'])))).toBe(false);
    expect(headers).not.toHaveProperty('ferry-attempt');
    expect(dead!.properties).toMatchObject({ messageId: id, type: 'dlv.dead', deliveryMode: 2 });
    expect(JSON.parse(dead!.content.toString('utf8'))).toEqual({ n: 1 });
    // Nothing left behind: the original and its retry copies were acked.
    await waitFor(async () => (await check(name))?.messageCount === 0, 5_000, 'an empty source queue');
    await observeFor(300);
    expect(attempts).toEqual([1, 2]);
  });

  it('a handler that throws a non-Error (undefined, a string, null) is retried and dead-lettered; the consumer keeps running', async () => {
    const name = own(uniqueName('dlv-nonerror'));
    const dlq = own(`${name}.dlq`, `${name}.retry.${retryBucket(10)}`);
    const q = queue(name);
    const broker = await ferry();
    const errors: FerryError[] = [];
    broker.on('error', (e) => errors.push(e));
    const attempts = new Map<string, number[]>();
    await broker.consumer().subscribe<string>(
      q,
      (m) => {
        attempts.set(m.data, [...(attempts.get(m.data) ?? []), m.attempt]);
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the point: handlers that throw non-Errors
        if (m.data === 'undefined') throw undefined;
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- idem
        if (m.data === 'string') throw 'x';
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- idem
        if (m.data === 'null') throw null;
      },
      { retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 } },
    );
    const producer = broker.producer();
    for (const data of ['undefined', 'string', 'null', 'ok-1']) await producer.publish(q, { type: 'dlv.throw', data });
    await waitFor(async () => (await check(dlq))?.messageCount === 3, 15_000, 'three dead letters');
    await producer.publish(q, { type: 'dlv.throw', data: 'ok-2' });
    await waitFor(() => attempts.has('ok-2'), 10_000, 'a message after the poison ones');
    expect(Object.fromEntries(attempts)).toEqual({
      undefined: [1, 2],
      string: [1, 2],
      null: [1, 2],
      'ok-1': [1],
      'ok-2': [1],
    });
    const dead = await drainRaw(dlq, 3);
    const byBody = Object.fromEntries(
      dead.map((m) => [m.content.toString('utf8'), m.properties.headers as Record<string, unknown>]),
    );
    for (const [body, reason] of [
      ['undefined', 'undefined'],
      ['string', 'x'],
      ['null', 'null'],
    ] as const) {
      expect(byBody[body]).toMatchObject({
        'ferry-dead-letter-code': ErrorCode.HANDLER_FAILED,
        'ferry-dead-letter-attempts': '2',
        'ferry-dead-letter-reason': reason,
      });
    }
    expect(errors).toEqual([]);
    expect(broker.health().status).toBe('up');
  });
});

describe('amqp delivery: broker-side interruptions', () => {
  it('a queue deleted under a live subscription: an error event, then the subscription re-declares it and consumes again', async () => {
    const name = own(uniqueName('dlv-cancel'));
    own(`${name}.dlq`);
    const q = queue(name);
    const broker = await ferry();
    const errors: FerryError[] = [];
    broker.on('error', (e) => errors.push(e));
    const got: string[] = [];
    await broker.consumer().subscribe<string>(q, (m) => void got.push(m.data));
    const producer = broker.producer();
    await producer.publish(q, { type: 'dlv.cancel', data: 'before' });
    await waitFor(() => got.includes('before'), 10_000, 'the first message');

    const channel = await (await admin()).createChannel();
    await channel.deleteQueue(name);
    await channel.close();
    await waitFor(
      () => errors.some((e) => e.message.includes(name)),
      10_000,
      () => `an error event about the cancelled consumer (got ${JSON.stringify(errors.map((e) => e.message))})`,
    );
    expect(errors.find((e) => e.message.includes(name))?.message).toMatch(/cancel/i);
    let state: { consumerCount: number } | undefined;
    await waitFor(
      async () => (state = await check(name))?.consumerCount === 1,
      10_000,
      () => `the queue re-declared with its consumer back (${JSON.stringify(state)})`,
    );
    await producer.publish(q, { type: 'dlv.cancel', data: 'after' });
    await waitFor(() => got.includes('after'), 10_000, 'a message published after the deletion');
    expect(got).toEqual(['before', 'after']);
    expect(broker.health().status).toBe('up');
  });

  it('a publish to a queue deleted behind Ferry rejects FERRY_UNROUTABLE at most once: publishing again re-creates the queue, as the error says', async () => {
    const name = own(uniqueName('dlv-redeclare'));
    const q = queue(name);
    const broker = await ferry();
    const producer = broker.producer();
    await producer.publish(q, { type: 'dlv.redeclare', data: 'one' });
    const channel = await (await admin()).createChannel();
    await channel.deleteQueue(name);
    await channel.close();

    let outcome: unknown = 'resolved';
    try {
      await producer.publish(q, { type: 'dlv.redeclare', data: 'two' });
    } catch (error) {
      outcome = error;
    }
    if (outcome !== 'resolved') {
      expect(outcome).toBeInstanceOf(PublishError);
      expect(outcome).toMatchObject({ code: ErrorCode.UNROUTABLE });
      expect((outcome as Error).message).toMatch(/publish again to re-create it/);
    }
    const again = await producer.publish(q, { type: 'dlv.redeclare', data: 'three' }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    expect(again).toBe('resolved');
    expect(await check(name)).toEqual({ messageCount: outcome === 'resolved' ? 2 : 1, consumerCount: 0 });
  });

  it("a consumer's connection dies mid-handler: the late ack is dropped (no 406 unknown delivery tag) and messages keep flowing after reconnect", async () => {
    const name = own(uniqueName('dlv-late-ack'));
    own(`${name}.dlq`);
    const q = queue(name);
    const logged: string[] = [];
    const log =
      (level: string) =>
      (fields: Readonly<Record<string, unknown>>, message: string): void =>
        void logged.push(`${level} ${message} ${JSON.stringify(fields)}`);
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: log('warn'), error: log('error') };
    const { broker, disconnect, reconnect } = await isolatedBroker({ logger });
    brokers.push(broker);
    const errors: FerryError[] = [];
    broker.on('error', (e) => errors.push(e));
    let reconnected = false;
    broker.on('connected', () => (reconnected = true));

    const hold = deferred();
    let holding = false;
    const seen: Array<{ data: string; redelivered: boolean }> = [];
    let stale: 'running' | 'returned' = 'running';
    await broker.consumer().subscribe<string>(q, async (m) => {
      seen.push({ data: m.data, redelivered: m.redelivered });
      if (m.data === 'held' && !holding) {
        holding = true;
        await hold.promise;
        stale = 'returned';
      }
    });
    const producer = broker.producer();
    await producer.publish(q, { type: 'dlv.late', data: 'held' });
    await waitFor(() => holding, 10_000, 'the handler to hold the message');

    await disconnect();
    await waitFor(() => broker.health().status !== 'up', 10_000, 'the broker to notice the cut');
    await reconnect();
    await waitFor(() => reconnected && broker.health().status === 'up', 15_000, 'the broker to reconnect');
    // RabbitMQ requeued the unacked message when the connection died: it comes again, flagged.
    await waitFor(
      () => seen.length === 2,
      10_000,
      () => `the redelivery (seen ${JSON.stringify(seen)})`,
    );
    expect(seen[1]).toEqual({ data: 'held', redelivered: true });

    // The first handler returns now, after the reconnect: its ack belongs to a dead channel.
    hold.resolve();
    await waitFor(() => stale === 'returned', 5_000, 'the held handler to return');
    for (let i = 1; i <= 5; i++) await producer.publish(q, { type: 'dlv.late', data: `next-${i}` });
    await waitFor(
      () => seen.length === 7,
      10_000,
      () => `the next messages (seen ${JSON.stringify(seen)})`,
    );
    expect(seen.slice(2).map((s) => s.data)).toEqual(['next-1', 'next-2', 'next-3', 'next-4', 'next-5']);

    let last: QueueStats | undefined;
    await waitFor(
      async () => {
        last = await stats(name);
        return last?.messages_ready === 0 && last.messages_unacknowledged === 0;
      },
      15_000,
      () => `every message acked (${describeStats(last)})`,
    );
    expect(last?.consumers).toBe(1);
    const tagErrors = [...errors.map((e) => e.message), ...logged].filter((text) =>
      /unknown delivery tag|PRECONDITION/i.test(text),
    );
    expect(tagErrors).toEqual([]);
    expect(logged.filter((l) => l.includes('subscription channel error'))).toEqual([]);
    expect(broker.health().status).toBe('up');
  }, 40_000);

  it('one consumer, concurrency 1: 500 messages published one after another arrive in order', async () => {
    const name = own(uniqueName('dlv-order'));
    own(`${name}.dlq`);
    const q = queue(name);
    const broker = await ferry();
    const got: number[] = [];
    await broker.consumer().subscribe<number>(q, (m) => void got.push(m.data), { concurrency: 1 });
    const producer = broker.producer();
    const total = 500;
    for (let i = 0; i < total; i++) await producer.publish(q, { type: 'dlv.order', data: i });
    await waitFor(
      () => got.length >= total,
      20_000,
      () => `${total} messages (${got.length})`,
    );
    await observeFor(200); // no duplicates trailing behind
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
  }, 60_000);
});
