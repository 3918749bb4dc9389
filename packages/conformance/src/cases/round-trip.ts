import { randomBytes } from 'node:crypto';
import { ConfigurationError, ErrorCode, type Message, PublishError } from '@ferry/core';
import { expect } from 'vitest';
import { observeFor, rejection } from '../helpers.js';
import type { CaseContext, ConformanceCase } from '../types.js';
import { TEST_TYPE } from './common.js';
import { SOURCE, fullMessage, expectIntact } from './round-trip-support.js';

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

/** Cases 01–03: what goes in comes out — attributes, payloads and headers. */
export const ROUND_TRIP_CASES: readonly ConformanceCase[] = [
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
];
