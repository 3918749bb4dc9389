import { randomBytes } from 'node:crypto';
import {
  ClosedError,
  ConfigurationError,
  ErrorCode,
  FerryError,
  type Message,
  type OutgoingMessage,
  PublishError,
  topic,
} from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, rejection, Tally } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { idsOf, numbered, TEST_TYPE } from './common.js';

const SOURCE = 'ferry-conformance-producer';
const TIME = '2026-01-02T03:04:05.678Z';

/** A message with every attribute set, to check each one arrives intact. */
function fullMessage(n: number): OutgoingMessage<{ n: number; nested: object }> {
  return {
    id: `round-trip-${n}-${Math.random().toString(36).slice(2, 10)}`,
    type: 'ferry.conformance.round-trip',
    subject: `subject-${n}`,
    key: `key-${n % 3}`,
    time: TIME,
    headers: { 'x-tenant': 'acme', 'x-request-id': `req-${n}` },
    data: { n, nested: { list: [1, 'two', null, { three: 3 }], flag: true } },
  };
}

function expectIntact(received: Message, sent: OutgoingMessage): void {
  expect(received.id).toBe(sent.id);
  expect(received.type).toBe(sent.type);
  expect(received.source).toBe(SOURCE);
  expect(received.specversion).toBe('1.0');
  expect(received.time).toBe(TIME);
  expect(received.subject).toBe(sent.subject);
  expect(received.key).toBe(sent.key);
  expect(received.datacontenttype).toBe('application/json');
  expect(received.data).toEqual(sent.data);
  expect({ ...received.headers }).toEqual(sent.headers);
  expect(received.attempt).toBe(1);
  expect(received.redelivered).toBe(false);
}

async function roundTrip(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('round-trip');
  const t = ctx.topic(`${ctx.topicBase('round-trip')}.created`);
  const got = new Map<string, Message>();
  const consumer = broker.consumer();
  await consumer.subscribe(q, (m) => void got.set(m.id, m));
  await consumer.subscribe(t, (m) => void got.set(m.id, m));
  const toQueue = fullMessage(1);
  const toTopic = fullMessage(2);
  const producer = broker.producer();
  await producer.publish(q, toQueue);
  await producer.publish(t, toTopic);
  await ctx.waitFor(() => got.size === 2, 'the queue and the topic message');
  expectIntact(got.get(toQueue.id!)!, toQueue);
  expect(got.get(toQueue.id!)!.destination).toEqual(q);
  expectIntact(got.get(toTopic.id!)!, toTopic);
  expect(got.get(toTopic.id!)!.destination).toEqual(t);
}

async function publishedBeforeSubscribe(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('early');
  const messages = Array.from({ length: ctx.count(20, 100) }, (_, n) => fullMessage(n));
  const publisher = await ctx.connect({ source: SOURCE });
  const producer = publisher.producer();
  for (const message of messages) await producer.publish(q, message);
  await publisher.close();
  const consumer = await ctx.connect();
  const got = new Map<string, Message>();
  await consumer.consumer().subscribe(q, (m) => void got.set(m.id, m), { concurrency: 10 });
  await ctx.waitFor(() => got.size === messages.length, `${messages.length} messages published before subscribing`);
  for (const sent of messages) expectIntact(got.get(sent.id!)!, sent);
}

async function payloadFidelity(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('payload');
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const oneMiB = ctx.capabilities.maxMessageBytes >= 1_100_000 ? randomBytes(1024 * 1024) : undefined;
  const payloads: Array<{ id: string; data: unknown; datacontenttype: string }> = [
    {
      id: 'nested-json',
      data: {
        numbers: [0, -1, 2.5, -3e-7, Number.MAX_SAFE_INTEGER],
        deep: { a: { b: { c: { d: 'deep' } } } },
        nothing: null,
        empty: {},
        emptyList: [],
        'ünï cödé 🔑': 'ünïcödé 日本語 🚀',
        escapes: 'quote " backslash \\ newline \n tab \t nul \u0000',
      },
      datacontenttype: 'application/json',
    },
    { id: 'json-null', data: null, datacontenttype: 'application/json' },
    {
      id: 'unicode-text',
      data: 'Grüße, 世界! 🚢 עברית \u202e rtl, e\u0301 combining, \u0000 nul, line\r\nbreak',
      datacontenttype: 'text/plain; charset=utf-8',
    },
    { id: 'all-bytes', data: allBytes, datacontenttype: 'application/octet-stream' },
    { id: 'empty-bytes', data: new Uint8Array(0), datacontenttype: 'application/octet-stream' },
    { id: 'empty-text', data: '', datacontenttype: 'text/plain; charset=utf-8' },
    ...(oneMiB === undefined ? [] : [{ id: 'one-mib', data: oneMiB, datacontenttype: 'application/octet-stream' }]),
  ];
  if (oneMiB === undefined) ctx.note('1 MiB payload left out: capabilities.maxMessageBytes is below 1.1 MB');
  const got = new Map<string, Message>();
  await broker.consumer().subscribe(q, (m) => void got.set(m.id, m));
  const producer = broker.producer();
  const run = Math.random().toString(36).slice(2, 10);
  for (const p of payloads) {
    await producer.publish(q, {
      type: TEST_TYPE,
      id: `${p.id}-${run}`,
      data: p.data,
      datacontenttype: p.datacontenttype,
    });
  }
  await ctx.waitFor(() => got.size === payloads.length, `${payloads.length} payloads`);
  for (const p of payloads) {
    const m = got.get(`${p.id}-${run}`)!;
    expect(m.datacontenttype, p.id).toBe(p.datacontenttype);
    if (p.data instanceof Uint8Array) {
      expect(m.data, p.id).toBeInstanceOf(Uint8Array);
      const bytes = m.data as Uint8Array;
      expect(bytes.byteLength, p.id).toBe(p.data.byteLength);
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(p.data)), p.id).toBe(0);
    } else {
      expect(m.data, p.id).toEqual(p.data);
    }
  }
  // Past maxMessageBytes: a typed error before anything is sent; the queue stays usable.
  const small = await ctx.connect({ maxMessageBytes: 64 * 1024 });
  const tooLarge = await rejection(
    small.producer().publish(q, { type: TEST_TYPE, id: `too-large-${run}`, data: new Uint8Array(64 * 1024 + 1) }),
  );
  expect(tooLarge).toBeInstanceOf(PublishError);
  expect(tooLarge).toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
  await producer.publish(q, { type: TEST_TYPE, id: `after-${run}`, data: 'after' });
  await ctx.waitFor(() => got.has(`after-${run}`), 'a message after the refused one');
  expect(got.has(`too-large-${run}`)).toBe(false);
}

async function headerFidelity(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('headers');
  const headers = {
    'x-colon': 'a:b:c',
    'x-newline': 'line1\nline2',
    'x-crlf': 'a\r\nb',
    'x-backslash': 'C:\\dir\\file, a literal \\n and \\\\',
    'x-unicode': 'héllo 日本 🚀',
    'x-empty': '',
    'x-spaces': '  padded  ',
    'x-quotes': `"double" 'single'`,
    'x-json': '{"a":[1,2]}',
    'x-long': 'v'.repeat(4000),
    'X-Mixed-Case': 'Case-Kept',
  };
  const got: Message[] = [];
  await broker.consumer().subscribe(q, (m) => void got.push(m));
  const producer = broker.producer();
  await producer.publish(q, { type: TEST_TYPE, data: 1, headers });
  await ctx.waitFor(() => got.length === 1, 'the message with unusual header values');
  expect({ ...got[0]!.headers }).toEqual(headers);

  // Reserved names cannot be set by an application, whatever their case; nothing is sent.
  const reserved = [
    'ce-id',
    'CE-Type',
    'ferry-attempt',
    'Ferry-Dead-Letter-Reason',
    'content-type',
    'destination',
    'receipt',
    'message-id',
    'x-mqtt-topic',
  ];
  for (const name of reserved) {
    const error = await rejection(producer.publish(q, { type: TEST_TYPE, data: name, headers: { [name]: 'spoof' } }));
    expect(error, name).toBeInstanceOf(ConfigurationError);
    expect(error, name).toMatchObject({ code: ErrorCode.RESERVED_HEADER });
  }
  for (const name of ['has space', 'has:colon', 'new\nline', '']) {
    const error = await rejection(producer.publish(q, { type: TEST_TYPE, data: name, headers: { [name]: 'v' } }));
    expect(error, JSON.stringify(name)).toMatchObject({ code: ErrorCode.INVALID_HEADER });
  }
  await observeFor(ctx.quietMs);
  expect(got).toHaveLength(1);
}

async function topicIsolation(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const base = ctx.topicBase('isolation');
  const q = ctx.queue('isolation');
  const sameName = topic(q.name.replaceAll('.', '-'));
  const consumer = broker.consumer();
  const onOrders = new Tally();
  const onQueue = new Tally();
  const onSameNameTopic = new Tally();
  await consumer.subscribe(topic(`${base}.orders`), (m) => onOrders.add(m.id));
  await consumer.subscribe(q, (m) => onQueue.add(m.id));
  await consumer.subscribe(sameName, (m) => onSameNameTopic.add(m.id));
  const producer = broker.producer();
  const neighbours = [`${base}.orders-eu`, `${base}.orders.eu`, `${base}.order`, `${base}.ordersx`, `${base}`];
  for (const key of neighbours) await producer.publish(topic(key), { type: TEST_TYPE, id: `leak-${key}`, data: key });
  const expected = numbered(ctx.count(10, 50));
  for (const m of expected) await producer.publish(topic(`${base}.orders`), m);
  await producer.publish(q, { type: TEST_TYPE, id: 'to-queue', data: 'q' });
  await producer.publish(sameName, { type: TEST_TYPE, id: 'to-topic', data: 't' });
  await ctx.waitFor(
    () => onOrders.hasAll(idsOf(expected)) && onQueue.distinct === 1 && onSameNameTopic.distinct === 1,
    'every message on its own destination',
  );
  await observeFor(ctx.quietMs);
  expect(onOrders.unexpected(idsOf(expected))).toEqual([]);
  expect(onOrders.duplicates).toBe(0);
  expect(onQueue.count('to-queue')).toBe(1);
  expect(onQueue.distinct).toBe(1);
  expect(onSameNameTopic.count('to-topic')).toBe(1);
  expect(onSameNameTopic.distinct).toBe(1);
}

async function wildcardRouting(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const base = ctx.topicBase('route');
  const keys = ['a.b.c', 'a.x.c', 'a.b', 'a.b.c.d', 'b.b.c', 'a', 'a.c', 'b.b'];
  const patterns: Record<string, string[]> = {
    'a.*.c': ['a.b.c', 'a.x.c'],
    'a.#': ['a.b.c', 'a.x.c', 'a.b', 'a.b.c.d', 'a', 'a.c'],
    '*.b': ['a.b', 'b.b'],
    '*.*.c': ['a.b.c', 'a.x.c', 'b.b.c'],
    '#': keys,
    'a.b.c': ['a.b.c'],
  };
  const tallies = new Map<string, Tally>();
  const consumer = broker.consumer();
  for (const pattern of Object.keys(patterns)) {
    const tally = new Tally();
    tallies.set(pattern, tally);
    const full = pattern === '#' ? `${base}.#` : `${base}.${pattern}`;
    await consumer.subscribe(topic(full), (m) => tally.add(m.subject ?? ''));
  }
  const producer = broker.producer();
  for (const key of keys) await producer.publish(topic(`${base}.${key}`), { type: TEST_TYPE, subject: key, data: key });
  await ctx.waitFor(
    () => Object.entries(patterns).every(([p, expected]) => tallies.get(p)!.hasAll(expected)),
    'every pattern to receive its keys',
  );
  await observeFor(ctx.quietMs);
  for (const [pattern, expected] of Object.entries(patterns)) {
    const tally = tallies.get(pattern)!;
    expect(tally.unexpected(new Set(expected)), `pattern ${pattern}`).toEqual([]);
    expect(tally.duplicates, `pattern ${pattern}`).toBe(0);
  }
}

async function publisherClose(ctx: CaseContext): Promise<void> {
  const q = ctx.queue('publisher-close');
  const consumerBroker = await ctx.connect();
  const tally = new Tally();
  await consumerBroker.consumer().subscribe(q, (m) => tally.add(m.id, m.redelivered), { concurrency: 20 });
  const publisher = await ctx.connect();
  const publishers = 20;
  const messages = numbered(ctx.count(200, 10_000));
  const resolved = new Set<string>();
  const failures: unknown[] = [];
  const producers = Array.from({ length: publishers }, () => publisher.producer());
  const publishing = messages.map((m, i) =>
    producers[i % publishers]!.publish(q, m).then(
      () => void resolved.add(m.id!),
      (error: unknown) => void failures.push(error),
    ),
  );
  await publisher.close();
  const settled = resolved.size + failures.length;
  await Promise.all(publishing);
  expect(settled, 'close() resolved before every publish had settled').toBe(messages.length);
  for (const error of failures) expect(error).toBeInstanceOf(FerryError);
  ctx.note(`${resolved.size} of ${messages.length} publishes resolved before close(), ${failures.length} rejected`);
  expect(resolved.size).toBeGreaterThan(0);
  await ctx.waitFor(
    () => tally.hasAll(resolved),
    `every resolved publish (missing ${tally.missing(resolved).join(', ')})`,
  );
  expect(tally.unflaggedDuplicates).toBe(0);
}

async function closedBroker(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const q = ctx.queue('closed');
  const producer = broker.producer();
  const live = broker.producer();
  const consumer = broker.consumer();
  await producer.close();
  const afterProducerClose = await rejection(producer.publish(q, { type: TEST_TYPE, data: 1 }));
  expect(afterProducerClose).toBeInstanceOf(ClosedError);
  await broker.close();
  await expect(broker.close()).resolves.toBeUndefined();
  for (const attempt of [
    () => live.publish(q, { type: TEST_TYPE, data: 2 }),
    () => consumer.subscribe(q, () => undefined),
  ]) {
    const error = await rejection(attempt());
    expect(error).toBeInstanceOf(ClosedError);
    expect(error).toMatchObject({ code: ErrorCode.CLOSED });
  }
  expect(() => broker.producer()).toThrow(ClosedError);
  expect(() => broker.consumer()).toThrow(ClosedError);
  expect(broker.health().status).toBe('down');
}

async function unroutable(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect();
  const producer = broker.producer();
  const base = ctx.topicBase('nobody');
  // A fan-out event nobody listens to is normal: never an error, on every transport.
  await producer.publish(topic(`${base}.plain`), { type: TEST_TYPE, data: 1 });
  const mandatory = producer.publish(topic(`${base}.mandatory`, { mandatory: true }), { type: TEST_TYPE, data: 2 });
  if (ctx.capabilities.unroutableDetection) {
    const error = await rejection(mandatory);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: ErrorCode.UNROUTABLE });
  } else {
    await expect(mandatory).resolves.toBeUndefined();
    ctx.note('unroutableDetection is false: a mandatory publish nobody receives resolves and is dropped (documented)');
  }
  // With a subscriber, a mandatory publish is delivered.
  const got: Message[] = [];
  await broker.consumer().subscribe(topic(`${base}.mandatory`), (m) => void got.push(m));
  await producer.publish(topic(`${base}.mandatory`, { mandatory: true }), { type: TEST_TYPE, data: 3 });
  await ctx.waitFor(() => got.length === 1, 'the mandatory publish with a subscriber');
  expect(got[0]!.data).toBe(3);
}

/** Cases 01–03, 10 and 21: what goes in comes out, where it should, and publishing is honest. */
export const DELIVERY_CASES: readonly ConformanceCase[] = [
  {
    id: '01a',
    title: 'round trip: id, type, source, time, subject, key, data and headers arrive intact on a queue and a topic',
    run: roundTrip,
  },
  {
    id: '01b',
    title: 'round trip: messages published before the subscriber exists on a durable queue arrive intact',
    requires: ['durableQueues'],
    run: publishedBeforeSubscribe,
  },
  {
    id: '02',
    title:
      'payload fidelity: nested JSON, null, unicode text, all 256 byte values, empty payloads and 1 MiB arrive byte for byte; an oversized publish is refused with FERRY_MESSAGE_TOO_LARGE',
    run: payloadFidelity,
  },
  {
    id: '03',
    title:
      'header fidelity: colons, newlines, backslashes, non-ASCII, empty and long values and name case survive; reserved and invalid names are refused',
    run: headerFidelity,
  },
  {
    id: '10a',
    title: 'isolation: neighbouring topics never leak in; a queue and a topic of the same name are separate',
    run: topicIsolation,
  },
  {
    id: '10b',
    title: 'routing: `*` matches exactly one word and a trailing `#` zero or more words, as documented',
    requires: ['wildcards'],
    run: wildcardRouting,
  },
  {
    id: '21a',
    title:
      'producers: 20 parallel publishers then close(): close waits for every publish, and every publish that resolved is delivered',
    run: publisherClose,
  },
  {
    id: '21b',
    title:
      'producers: publish, subscribe and producer() on a closed broker fail with ClosedError; close() is idempotent',
    run: closedBroker,
  },
  {
    id: '21c',
    title:
      'producers: a topic publish nobody receives resolves; with mandatory it fails with FERRY_UNROUTABLE where capabilities.unroutableDetection',
    run: unroutable,
  },
];
