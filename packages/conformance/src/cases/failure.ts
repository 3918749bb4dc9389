import {
  type ConsumeMiddleware,
  type Consumer,
  deadLetterQueueName,
  defineEvent,
  describeDestination,
  ErrorCode,
  type ErrorCodeValue,
  FerryError,
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_TIME,
  type Headers,
  idempotency,
  MemoryIdempotencyStore,
  type Message,
  type OutgoingMessage,
  PermanentError,
  queue,
  type Queue,
  type Topic,
} from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expect } from 'vitest';
import { deferred, observeFor, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { busy, fastRetry, idsOf, numbered, publishAll, TEST_TYPE } from './common.js';

/** The CloudEvents `source` of what these cases publish, to check it survives into the dead letter. */
const SOURCE = 'ferry-conformance-failure';
/** A fixed `time`, to check it survives into the dead letter. */
const TIME = '2026-03-04T05:06:07.890Z';
/** The five headers core adds to a dead letter. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_TIME,
]);

/** A short unique suffix for message ids. */
function run(): string {
  return randomUUID().slice(0, 8);
}

/** Adds one to a counter in a map. */
function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/**
 * Collects what arrives on the dead-letter queue of a subscription to `from` (with `group`), as any
 * application would read it: `queue(deadLetterQueueName(from, group))`. Subscribe it before anything can
 * fail, so the queue exists on brokers that only keep messages for known subscriptions.
 */
async function watchDeadLetters<T = unknown>(
  consumer: Consumer,
  from: Queue | Topic,
  options: { readonly group?: string; readonly decode?: boolean } = {},
): Promise<Message<T>[]> {
  const dead: Message<T>[] = [];
  await consumer.subscribe<T>(queue(deadLetterQueueName(from, options.group)), (m) => void dead.push(m), {
    decode: options.decode ?? true,
  });
  return dead;
}

/** A dead letter's headers without the five core adds: what the application sent. */
function applicationPart(headers: Headers): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !DEAD_LETTER_HEADERS.has(name)));
}

/** Dead letters, as `id: code (reason)` lines, for assertions that must find none. */
function describeDead(dead: ReadonlyArray<Message<unknown>>): string[] {
  return dead.map((d) => `${d.id}: ${d.headers[HEADER_DEAD_LETTER_CODE]} (${d.headers[HEADER_DEAD_LETTER_REASON]})`);
}

interface DeadLetterExpectation {
  readonly code: ErrorCodeValue;
  readonly attempts: number;
  readonly origin: string;
  /** `Date.now()` before the message was published. */
  readonly since: number;
  /** Text the reason must contain. */
  readonly reason?: string;
}

/** Checks the dead-letter headers a DLQ reader sees in `message.headers`. */
function expectDeadLetter(dead: Message<unknown>, expected: DeadLetterExpectation): void {
  const h = dead.headers;
  const label = `dead letter ${dead.id}`;
  expect(h[HEADER_DEAD_LETTER_CODE], label).toBe(expected.code);
  expect(h[HEADER_DEAD_LETTER_ATTEMPTS], label).toBe(String(expected.attempts));
  expect(h[HEADER_DEAD_LETTER_ORIGIN], label).toBe(expected.origin);
  expect(h[HEADER_DEAD_LETTER_REASON], label).toEqual(expect.any(String));
  expect(h[HEADER_DEAD_LETTER_REASON]?.length, label).toBeGreaterThan(0);
  if (expected.reason !== undefined) expect(h[HEADER_DEAD_LETTER_REASON], label).toContain(expected.reason);
  expect(h[HEADER_ATTEMPT], label).toBeUndefined();
  const time = h[HEADER_DEAD_LETTER_TIME] ?? '';
  expect(time, label).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  const at = Date.parse(time);
  // Written by the consumer in this process, so this process's clock (1 s of slack for clock adjustments).
  expect(at, `${label}: ${HEADER_DEAD_LETTER_TIME} ${time}`).toBeGreaterThanOrEqual(expected.since - 1_000);
  expect(at, `${label}: ${HEADER_DEAD_LETTER_TIME} ${time}`).toBeLessThanOrEqual(Date.now() + 1_000);
}

/** Checks that a received message carries the attributes and data of `sent` (published with {@link SOURCE}). */
function expectSameMessage(received: Message<unknown>, sent: OutgoingMessage): void {
  expect(received.id).toBe(sent.id);
  expect(received.type).toBe(sent.type);
  expect(received.source).toBe(SOURCE);
  expect(received.subject).toBe(sent.subject);
  expect(received.key).toBe(sent.key);
  if (sent.time !== undefined) expect(received.time).toBe(sent.time);
  expect(received.data).toEqual(sent.data);
}

/** Waits until `tally` holds every id of `ids`; on timeout the error names what is missing. */
async function waitForAll(ctx: CaseContext, tally: Tally, ids: ReadonlySet<string>, what: string): Promise<void> {
  try {
    await ctx.waitFor(() => tally.hasAll(ids), what);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}: ${tally.distinct} of ${ids.size} arrived; first missing: ${tally.missing(ids).join(', ')}`,
      {
        cause: error,
      },
    );
  }
}

// A hand-made Standard Schema v1 (the suite does not depend on a schema library): accepts `{ n: number }`.
interface Counted {
  readonly n: number;
}
type CountedResult = { readonly value: Counted } | { readonly issues: ReadonlyArray<CountedIssue> };
interface CountedIssue {
  readonly message: string;
  readonly path: readonly PropertyKey[];
}
/** The issue message of {@link countedSchema}. */
const COUNTED_ISSUE = 'n must be a finite number';
const countedSchema = {
  '~standard': {
    version: 1 as const,
    vendor: 'ferry-conformance',
    validate(value: unknown): CountedResult {
      const n = typeof value === 'object' && value !== null ? (value as { n?: unknown }).n : undefined;
      return typeof n === 'number' && Number.isFinite(n)
        ? { value: { n } }
        : { issues: [{ message: COUNTED_ISSUE, path: ['n'] }] };
    },
    types: undefined as { readonly input: Counted; readonly output: Counted } | undefined,
  },
};
/** The event contract the contract cases subscribe with. */
const CountedEvent = defineEvent(`${TEST_TYPE}.counted`, countedSchema);
/** A type no contract of these cases accepts. */
const OTHER_TYPE = `${TEST_TYPE}.other`;

// 14a
async function retriedOnce(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('retry-once');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const seen: Message<unknown>[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      seen.push(m);
      if (seen.length === 1) throw new Error('fails on its first delivery only');
    },
    { retry: fastRetry(3) },
  );
  const sent: OutgoingMessage = {
    type: TEST_TYPE,
    id: `retry-once-${run()}`,
    subject: 'retry-once',
    key: 'k-14a',
    time: TIME,
    data: { n: 1, text: 'once', list: [1, 'two', null] },
    headers: { 'x-case': '14a', 'x-tenant': 'acme' },
  };
  await broker.producer().publish(q, sent);
  await ctx.waitFor(() => seen.length >= 2, 'the redelivery after the first failure');
  await observeFor(ctx.quietMs);
  expect(seen, 'deliveries: the failed one and its retry, no third').toHaveLength(2);
  const [first, second] = seen as [Message<unknown>, Message<unknown>];
  expect(first.attempt).toBe(1);
  expect(first.redelivered).toBe(false);
  expect(second.attempt).toBe(2);
  expect(second.redelivered).toBe(true);
  for (const m of seen) {
    expectSameMessage(m, sent);
    expect({ ...m.headers }).toEqual(sent.headers);
  }
  expect(describeDead(dead)).toEqual([]);
}

// 14b
async function injectedFailures(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('injected');
  const messages = numbered(ctx.count(50, 100));
  const ids = idsOf(messages);
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  let deliveries = 0;
  const failures = new Map<string, number>();
  const handledAttempt = new Map<string, number>();
  const handled = new Tally();
  await consumer.subscribe(
    q,
    (m) => {
      deliveries++;
      // Dapr's pattern: the first 2 deliveries fail, then every 5th, whatever message it is.
      if (deliveries <= 2 || deliveries % 5 === 0) {
        bump(failures, m.id);
        throw new Error(`injected failure on delivery ${deliveries}`);
      }
      handled.add(m.id, m.redelivered);
      handledAttempt.set(m.id, m.attempt);
    },
    { retry: fastRetry(10) },
  );
  await publishAll(broker.producer(), q, messages, 4);
  await waitForAll(ctx, handled, ids, `all ${ids.size} messages despite the injected failures`);
  await observeFor(ctx.quietMs);
  expect(describeDead(dead)).toEqual([]);
  expect(handled.unexpected(ids)).toEqual([]);
  expect(handled.duplicates).toBe(0);
  const injected = [...failures.values()].reduce((a, b) => a + b, 0);
  expect(injected).toBeGreaterThanOrEqual(2 + Math.floor(ids.size / 5));
  expect(deliveries).toBe(ids.size + injected);
  // Each failure is counted: a message that failed k times is handled at attempt k + 1.
  for (const id of ids) expect(handledAttempt.get(id), id).toBe((failures.get(id) ?? 0) + 1);
  ctx.note(
    `${injected} injected failures over ${deliveries} deliveries; ${failures.size} messages failed at least once`,
  );
}

// 15
async function continueAfterErrors(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('continue');
  const messages = numbered(ctx.count(20, 50));
  const ids = idsOf(messages);
  const failEach = ctx.count(10, 100);
  const publisher = await ctx.connect();
  const dead = await watchDeadLetters(publisher.consumer(), q);
  // Enough attempts that nothing reaches the dead letter while the subscribers fail.
  const retry = fastRetry(10_000);
  const failed = [0, 0, 0];
  for (let i = 0; i < failed.length; i++) {
    const broker = await ctx.connect();
    await broker.consumer().subscribe(
      q,
      () => {
        failed[i] = failed[i]! + 1;
        throw new Error(`subscriber ${i + 1} fails every delivery`);
      },
      { retry },
    );
    if (i === 0) await publishAll(publisher.producer(), q, messages, 4);
    await ctx.waitFor(
      () => failed[i]! >= failEach,
      i === 0
        ? `subscriber 1 to fail ${failEach} deliveries`
        : `subscriber ${i + 1} to fail ${failEach} deliveries (none coming: the retries pending when subscriber ${i} closed were lost)`,
    );
    // Closes with retries it scheduled still pending: they must not be lost.
    await broker.close();
  }
  const fresh = await ctx.connect();
  const handled = new Tally();
  await fresh
    .consumer()
    .subscribe(q, (m) => void handled.add(m.id, m.redelivered || m.attempt > 1), { retry, concurrency: 4 });
  await waitForAll(ctx, handled, ids, `every one of ${ids.size} messages at the fresh subscriber`);
  expect(handled.unexpected(ids)).toEqual([]);
  expect(describeDead(dead)).toEqual([]);
  ctx.note(
    `failed deliveries per subscriber: ${failed.join(', ')}; fresh subscriber: ${handled.deliveries} deliveries, ${handled.duplicates} duplicates`,
  );
}

/** A message with every attribute and headers, to check the dead letter keeps them. */
function poisonMessage(label: string): OutgoingMessage {
  return {
    type: TEST_TYPE,
    id: `poison-${label}-${run()}`,
    subject: `subject-${label}`,
    key: `key-${label}`,
    time: TIME,
    data: { n: 1, text: `poison ${label}`, nested: { list: [1, 'two', null] } },
    headers: { 'x-case': label, 'x-tenant': 'acme' },
  };
}

// 16a
async function deadLetterAfterRetries(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('exhausted');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const poison = poisonMessage('16a');
  const next: OutgoingMessage = { type: TEST_TYPE, id: `next-${run()}`, data: { n: 2 } };
  const poisonAttempts: number[] = [];
  const handled: string[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      if (m.id === poison.id) {
        poisonAttempts.push(m.attempt);
        throw new Error(`boom ${m.id}`);
      }
      handled.push(m.id);
    },
    { retry: fastRetry(3) },
  );
  const since = Date.now();
  const producer = broker.producer();
  await producer.publish(q, poison);
  await ctx.waitFor(() => dead.length >= 1, 'the dead letter');
  await observeFor(ctx.quietMs);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  expect(poisonAttempts).toEqual([1, 2, 3]);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(d.datacontenttype).toBe('application/json');
  expect(d.destination).toEqual(queue(`${q.name}.dlq`));
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.HANDLER_FAILED,
    attempts: 3,
    origin: describeDestination(q),
    since,
    reason: `boom ${poison.id}`,
  });
  // The consumer goes on: the next message reaches the handler, which succeeds for it.
  await producer.publish(q, next);
  await ctx.waitFor(() => handled.includes(next.id!), 'the message published after the dead letter');
  expect(handled).toEqual([next.id]);
  expect(poisonAttempts).toHaveLength(3);
  expect(dead).toHaveLength(1);
}

// 16b
async function groupDeadLetter(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const t = ctx.topic(`${ctx.topicBase('group-dlq')}.placed`);
  const failing = ctx.group('failing');
  const healthy = ctx.group('healthy');
  expect(deadLetterQueueName(t, failing)).toBe(`${t.name}.${failing}.dlq`);
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, t, { group: failing });
  const healthyDead = await watchDeadLetters(consumer, t, { group: healthy });
  const poison = poisonMessage('16b');
  const next: OutgoingMessage = { type: TEST_TYPE, id: `next-${run()}`, data: { n: 2 } };
  const failingAttempts: number[] = [];
  const failingHandled: string[] = [];
  const healthySeen: Message<unknown>[] = [];
  await consumer.subscribe(
    t,
    (m) => {
      if (m.id === poison.id) {
        failingAttempts.push(m.attempt);
        throw new Error(`boom ${m.id}`);
      }
      failingHandled.push(m.id);
    },
    { group: failing, retry: fastRetry(3) },
  );
  await consumer.subscribe(t, (m) => void healthySeen.push(m), { group: healthy, retry: fastRetry(3) });
  const since = Date.now();
  const producer = broker.producer();
  await producer.publish(t, poison);
  await ctx.waitFor(() => dead.length >= 1 && healthySeen.length >= 1, "the dead letter and the other group's copy");
  await observeFor(ctx.quietMs);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  expect(failingAttempts).toEqual([1, 2, 3]);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(d.destination).toEqual(queue(`${t.name}.${failing}.dlq`));
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.HANDLER_FAILED,
    attempts: 3,
    origin: `${describeDestination(t)}#${failing}`,
    since,
    reason: `boom ${poison.id}`,
  });
  // The other group got the message once, as published: never one of the failing group's retries.
  expect(healthySeen.map((m) => [m.id, m.attempt, m.redelivered])).toEqual([[poison.id, 1, false]]);
  expect(describeDead(healthyDead)).toEqual([]);
  await producer.publish(t, next);
  await ctx.waitFor(
    () => failingHandled.includes(next.id!) && healthySeen.some((m) => m.id === next.id),
    'the next message in both groups',
  );
  await observeFor(ctx.quietMs);
  expect(failingHandled).toEqual([next.id]);
  expect(healthySeen.map((m) => m.id)).toEqual([poison.id, next.id]);
  expect(dead).toHaveLength(1);
}

// 16c
async function permanentError(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('permanent');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const poison = poisonMessage('16c');
  const attempts: number[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      attempts.push(m.attempt);
      throw new PermanentError(`order ${m.id} does not exist`);
    },
    { retry: fastRetry(5) },
  );
  const since = Date.now();
  await broker.producer().publish(q, poison);
  await ctx.waitFor(() => dead.length >= 1, 'the dead letter');
  await observeFor(ctx.quietMs);
  expect(attempts, 'handler calls: one, no retry').toEqual([1]);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.PERMANENT,
    attempts: 1,
    origin: describeDestination(q),
    since,
    reason: `order ${poison.id} does not exist`,
  });
}

// 17a
async function undecodable(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('undecodable');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters<Buffer>(consumer, q, { decode: false });
  const handled: Message<unknown>[] = [];
  await consumer.subscribe(q, (m) => void handled.push(m));
  const body = Buffer.from('{"broken": ', 'utf8');
  const since = Date.now();
  await ctx.publishRaw(q, { body, contentType: 'application/json', headers: { 'x-case': '17a' } });
  await ctx.waitFor(() => dead.length >= 1, 'the dead letter of the undecodable body');
  const valid: OutgoingMessage = { type: TEST_TYPE, id: `valid-${run()}`, data: { n: 1 } };
  await broker.producer().publish(q, valid);
  await ctx.waitFor(() => handled.length >= 1, 'the valid message published after it');
  await observeFor(ctx.quietMs);
  expect(
    handled.map((m) => m.id),
    'handler calls: only the valid message',
  ).toEqual([valid.id]);
  expect(handled[0]!.data).toEqual(valid.data);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  const d = dead[0]!;
  expect(Buffer.isBuffer(d.data)).toBe(true);
  expect(d.data.toString('hex'), 'the original bytes, byte for byte').toBe(body.toString('hex'));
  expect(d.datacontenttype).toBe('application/json');
  expect(applicationPart(d.headers)).toEqual({ 'x-case': '17a' });
  expectDeadLetter(d, { code: ErrorCode.DECODE, attempts: 1, origin: describeDestination(q), since });
}

// 17b
async function schemaInvalid(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('schema');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const handled: Message<Counted>[] = [];
  await consumer.subscribe(q, CountedEvent, (m) => void handled.push(m), { retry: fastRetry(3) });
  const r = run();
  // Plain messages, not CountedEvent.create(): the producer must not refuse them before they reach the consumer.
  const invalid: OutgoingMessage = { type: CountedEvent.type, id: `invalid-${r}`, data: { n: 'x' } };
  const valid: OutgoingMessage = { type: CountedEvent.type, id: `valid-${r}`, data: { n: 1 } };
  const otherType: OutgoingMessage = { type: OTHER_TYPE, id: `other-${r}`, data: { n: 2 } };
  const since = Date.now();
  const producer = broker.producer();
  for (const message of [invalid, valid, otherType]) await producer.publish(q, message);
  await ctx.waitFor(() => dead.length >= 2 && handled.length >= 1, 'two dead letters and the valid message');
  await observeFor(ctx.quietMs);
  expect(
    handled.map((m) => m.id),
    'handler calls: only the valid message',
  ).toEqual([valid.id]);
  expect(handled[0]!.data).toEqual({ n: 1 });
  expect(dead.map((d) => d.id).sort(), 'dead letters: the invalid one and the other type, once each').toEqual(
    [invalid.id, otherType.id].sort(),
  );
  const origin = describeDestination(q);
  const deadInvalid = dead.find((d) => d.id === invalid.id)!;
  expect(deadInvalid.data).toEqual({ n: 'x' });
  expect(deadInvalid.type).toBe(CountedEvent.type);
  expectDeadLetter(deadInvalid, { code: ErrorCode.VALIDATION, attempts: 1, origin, since, reason: COUNTED_ISSUE });
  const deadOther = dead.find((d) => d.id === otherType.id)!;
  expect(deadOther.data).toEqual({ n: 2 });
  expect(deadOther.type).toBe(OTHER_TYPE);
  expectDeadLetter(deadOther, { code: ErrorCode.VALIDATION, attempts: 1, origin, since, reason: OTHER_TYPE });
}

// 17c
async function hostileJson(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('hostile');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters<Buffer>(consumer, q, { decode: false });
  const handled: Message<unknown>[] = [];
  await consumer.subscribe(q, (m) => void handled.push(m));
  const depth = 10_000;
  const bodies = new Map<string, Buffer>([
    ['__proto__', Buffer.from('{"__proto__": {"polluted": true}}')],
    ['constructor.prototype', Buffer.from('{"constructor": {"prototype": {"x": 1}}}')],
    [`${depth} levels deep`, Buffer.from(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)],
  ]);
  const since = Date.now();
  for (const body of bodies.values()) await ctx.publishRaw(q, { body, contentType: 'application/json' });
  await ctx.waitFor(() => dead.length >= bodies.size, `${bodies.size} dead letters`);
  const valid: OutgoingMessage = { type: TEST_TYPE, id: `valid-${run()}`, data: { n: 1 } };
  await broker.producer().publish(q, valid);
  await ctx.waitFor(() => handled.length >= 1, 'the valid message published after them');
  await observeFor(ctx.quietMs);
  expect(
    handled.map((m) => m.id),
    'handler calls: only the valid message',
  ).toEqual([valid.id]);
  expect(dead, 'dead letters: one per hostile body').toHaveLength(bodies.size);
  const byBody = new Map(dead.map((d) => [d.data.toString('hex'), d]));
  for (const [label, body] of bodies) {
    const d = byBody.get(body.toString('hex'));
    expect(d, `the dead letter of ${label}, byte for byte`).toBeDefined();
    expectDeadLetter(d!, { code: ErrorCode.DECODE, attempts: 1, origin: describeDestination(q), since });
  }
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Object.prototype).not.toHaveProperty('x');
}

/** `ferry-attempt` values that are not an integer in [1, maxAttempts] for maxAttempts 3. */
const SPOOFED_ATTEMPTS = ['99999', '-1', 'abc', '0', '03', '4'];

// 17d
async function spoofedAttempts(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('spoofed');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const trusted = 'in-range-3';
  const calls = new Map<string, number[]>();
  await consumer.subscribe(
    q,
    (m) => {
      const probe = m.headers['x-probe'] ?? '?';
      calls.set(probe, [...(calls.get(probe) ?? []), m.attempt]);
      if (probe === trusted) throw new Error(`boom ${probe}`);
      // Fail the first delivery: a spoofed value must not have used up the retries.
      if (calls.get(probe)!.length === 1) throw new Error(`first delivery of ${probe} fails`);
    },
    { retry: fastRetry(3) },
  );
  const probes = SPOOFED_ATTEMPTS.map((value) => ({ probe: `spoofed-${value}`, value }));
  const since = Date.now();
  for (const { probe, value } of [...probes, { probe: trusted, value: '3' }]) {
    await ctx.publishRaw(q, {
      body: Buffer.from(JSON.stringify({ probe })),
      contentType: 'application/json',
      headers: { [HEADER_ATTEMPT]: value, 'x-probe': probe },
    });
  }
  await ctx.waitFor(
    () => dead.length >= 1 && probes.every(({ probe }) => (calls.get(probe)?.length ?? 0) >= 2),
    'every spoofed probe retried once and the in-range one dead-lettered',
  );
  await observeFor(ctx.quietMs);
  for (const { probe } of probes) expect(calls.get(probe), `attempts of ${probe}`).toEqual([1, 2]);
  expect(calls.get(trusted), 'attempts of ferry-attempt 3 with maxAttempts 3').toEqual([3]);
  expect(dead, 'dead letters: only the in-range probe').toHaveLength(1);
  const d = dead[0]!;
  expect(d.headers['x-probe']).toBe(trusted);
  expect(d.data).toEqual({ probe: trusted });
  expectDeadLetter(d, {
    code: ErrorCode.HANDLER_FAILED,
    attempts: 3,
    origin: describeDestination(q),
    since,
    reason: `boom ${trusted}`,
  });
}

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

/** Cases 14–17, 19, 24 and 26: retries, dead letters, poison messages, concurrency, timeouts and idempotency. */
export const FAILURE_CASES: readonly ConformanceCase[] = [
  {
    id: '14a',
    title:
      'retry: a handler that throws once gets the message again with attempt 2 and redelivered, same id, attributes, data and headers; then it is acked and not delivered a third time',
    run: retriedOnce,
  },
  {
    id: '14b',
    title:
      "retry: with Dapr's injected failures (the first 2 deliveries and every 5th fail) every message is eventually handled, once, at attempt = its failures + 1, and nothing is dead-lettered",
    run: injectedFailures,
  },
  {
    id: '15',
    title:
      'retry: after 3 subscribers in turn each failed many deliveries and closed with retries pending, a fresh subscriber gets every message (no retry is lost with the subscription that scheduled it)',
    requires: ['durableSubscriptions'],
    run: continueAfterErrors,
  },
  {
    id: '16a',
    title:
      'dead letter: a queue message whose retries are exhausted is dead-lettered exactly once to <queue>.dlq with its id, attributes, data and headers plus the reason, code, attempts, origin and time; later messages still flow',
    run: deadLetterAfterRetries,
  },
  {
    id: '16b',
    title:
      "dead letter: a group's exhausted message goes to <topic>.<group>.dlq once, and another group on the topic gets it exactly once, never the retries",
    requires: ['groups'],
    run: groupDeadLetter,
  },
  {
    id: '16c',
    title: 'dead letter: a PermanentError dead-letters at once, after one handler call, with attempts 1',
    run: permanentError,
  },
  {
    id: '17a',
    title:
      'poison: an undecodable JSON body from a foreign client is dead-lettered (FERRY_DECODE) with its bytes unchanged, without calling the handler; the consumer keeps going',
    requires: ['nativeHeaders'],
    run: undecodable,
  },
  {
    id: '17b',
    title:
      'poison: with an event contract, schema-invalid data and a message of another type are dead-lettered (FERRY_VALIDATION) without calling the handler; valid ones are handled',
    run: schemaInvalid,
  },
  {
    id: '17c',
    title:
      'poison: hostile JSON (__proto__, constructor.prototype, 10,000 levels deep) is dead-lettered without calling the handler or polluting Object.prototype; the consumer keeps going',
    requires: ['nativeHeaders'],
    run: hostileJson,
  },
  {
    id: '17d',
    title:
      'poison: a spoofed ferry-attempt that is not an integer in [1, maxAttempts] counts as attempt 1 and keeps every retry; an in-range value is trusted by design, so ferry-attempt 3 of 3 is dead-lettered after one call',
    requires: ['nativeHeaders'],
    run: spoofedAttempts,
  },
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
