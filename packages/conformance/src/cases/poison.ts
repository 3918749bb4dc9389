import type { CaseContext, ConformanceCase } from '../types.js';
import { describeDestination, ErrorCode, HEADER_ATTEMPT, type Message, type OutgoingMessage } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor } from '../helpers.js';
import { fastRetry, TEST_TYPE } from './common.js';
import {
  SOURCE,
  run,
  watchDeadLetters,
  applicationPart,
  expectDeadLetter,
  type Counted,
  COUNTED_ISSUE,
  CountedEvent,
  OTHER_TYPE,
} from './failure-support.js';

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

/** Case 17: poison — undecodable, schema-invalid, hostile and spoofed input is dead-lettered without calling the handler. */
export const POISON_CASES: readonly ConformanceCase[] = [
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
];
