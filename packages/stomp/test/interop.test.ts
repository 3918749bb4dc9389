import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FrameImpl, type Client, type IMessage } from '@stomp/stompjs';
import {
  type Broker,
  connect,
  type ConnectOptions,
  ErrorCode,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  type Message,
  queue,
  topic,
} from '@ferry/core';
import { observeFor, uniqueName, waitFor } from '@ferry/conformance';
import { afterEach, describe, expect, it } from 'vitest';
import { installFrameReader, unescapeHeaderValue } from '../src/frames.js';
import { AMQP_URL, connectStomp, deleteQueues, rawStomp, STOMP_HOST, STOMP_PORT, TEST_RECONNECT } from './broker.js';

/**
 * Interoperability of the STOMP transport on the real RabbitMQ 3.10: plain STOMP clients both ways,
 * Ferry over AMQP and Ferry over STOMP on the same queues and group queues, STOMP 1.2 header escaping,
 * headers RabbitMQ echoes back, web-STOMP (binary frames) and the structured CloudEvents mode.
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WAIT_MS = 10_000;
const WS_URL = 'stomp://guest:guest@127.0.0.1:15674/ws?transport=websocket';
/** Headers a STOMP frame or RabbitMQ adds, none of which is the application's. */
const STOMP_CONTROL = [
  'destination',
  'message-id',
  'subscription',
  'ack',
  'content-length',
  'content-type',
  'receipt',
  'persistent',
  'redelivered',
  'x-queue-type',
  'x-queue-name',
  'durable',
  'auto-delete',
  'prefetch-count',
  'id',
];

const queues = new Set<string>();
const closers: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  if (queues.size === 0) return;
  await deleteQueues(queues);
  queues.clear();
});

/** A queue name for this test, deleted after it with its dead-letter queue. */
function queueName(prefix: string): string {
  const name = uniqueName(prefix);
  queues.add(name).add(`${name}.dlq`);
  return name;
}

/** Ferry over STOMP (TCP unless `url` says otherwise), closed after the test. */
async function stomp(options: ConnectOptions = {}, url?: string): Promise<Broker> {
  const broker = await connectStomp(options, url);
  closers.push(() => broker.close());
  return broker;
}

/** Ferry over AMQP on the same RabbitMQ, closed after the test. */
async function amqpFerry(options: ConnectOptions = {}): Promise<Broker> {
  const broker = await connect(AMQP_URL, { reconnect: TEST_RECONNECT, ...options });
  closers.push(() => broker.close());
  return broker;
}

/** A plain stompjs client ("a service without Ferry"), deactivated after the test. */
async function plainClient(): Promise<Client> {
  const client = await rawStomp();
  closers.push(() => client.deactivate());
  return client;
}

/** A plain SEND with a receipt, resolved on the RECEIPT. */
async function plainSend(
  client: Client,
  destination: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<void> {
  const receipt = uniqueName('plain-send');
  const done = new Promise<void>((resolve) => client.watchForReceipt(receipt, () => resolve()));
  client.publish({
    destination,
    headers: { ...headers, receipt },
    ...(typeof body === 'string' ? { body } : { binaryBody: body }),
  });
  await done;
}

/** A plain SUBSCRIBE (`ack: auto`), resolved once RabbitMQ answered it; collects the MESSAGE frames. */
async function plainSubscribe(client: Client, destination: string): Promise<IMessage[]> {
  const frames: IMessage[] = [];
  const receipt = uniqueName('plain-sub');
  const done = new Promise<void>((resolve) => client.watchForReceipt(receipt, () => resolve()));
  client.subscribe(destination, (frame) => void frames.push(frame), { ack: 'auto', receipt });
  await done;
  return frames;
}

/**
 * A STOMP client on a bare TCP socket, writing exactly the bytes given: no library escapes or trims
 * anything. Each frame needs a `receipt:<id>` header; resolves once RabbitMQ receipted every one.
 */
async function rawFrames(frames: ReadonlyArray<{ receipt: string; frame: string | Buffer }>): Promise<void> {
  const socket = netConnect(STOMP_PORT, STOMP_HOST);
  closers.push(() => Promise.resolve(void socket.destroy()));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.write('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
  await waitFor(
    () => received.startsWith('CONNECTED'),
    WAIT_MS,
    () => `CONNECTED (got ${JSON.stringify(received)})`,
  );
  for (const { frame } of frames) socket.write(frame);
  await waitFor(
    () => frames.every(({ receipt }) => received.includes(`receipt-id:${receipt}\n`)),
    WAIT_MS,
    () => `the receipts (got ${JSON.stringify(received)})`,
  );
  socket.end('DISCONNECT\n\n\0');
}

/** Collects what a Ferry handler receives. */
function collector<T = unknown>(): { messages: Message<T>[]; handler: (m: Message<T>) => void } {
  const messages: Message<T>[] = [];
  return { messages, handler: (m) => void messages.push(m) };
}

function until(what: string, condition: () => boolean): Promise<void> {
  return waitFor(condition, WAIT_MS, what);
}

/** Every byte value 0..255, twice, so that NUL and every control byte sit inside the body. */
function allBytes(): Buffer {
  const one = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return Buffer.concat([one, one.reverse()]);
}

function bytesOf(data: unknown): Buffer {
  expect(data).toBeInstanceOf(Uint8Array);
  const view = data as Uint8Array;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** STOMP 1.2 header value escaping, as a sender writes it. */
function escapeHeaderValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/:/g, '\\c');
}

function expectNoControlHeaders(headers: Readonly<Record<string, string>>): void {
  for (const name of Object.keys(headers)) {
    expect(STOMP_CONTROL, `header ${name} reached the handler`).not.toContain(name.toLowerCase());
    expect(name.startsWith('ce-') || name.startsWith('ferry-'), `header ${name} reached the handler`).toBe(false);
  }
}

describe('stomp interop: plain STOMP producer → Ferry consumer', () => {
  it('synthesizes the envelope of a plain SEND: text, JSON and a binary body with NUL bytes', async () => {
    const name = queueName('stomp-in');
    const broker = await stomp();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    const client = await plainClient();
    const startedAt = Date.now();
    const binary = Buffer.from([0, 1, 2, 0, 0, 255, 0, 10, 13, 0]);
    // Every SEND carries the control headers a plain client typically sets.
    const control = { persistent: 'true' };
    await plainSend(client, `/queue/${name}`, 'hello plain', {
      ...control,
      'content-type': 'text/plain',
      tenant: 'acme',
    });
    await plainSend(client, `/queue/${name}`, JSON.stringify({ orderId: 42, items: ['a', 'b'] }), {
      ...control,
      'content-type': 'application/json',
      type: 'order.placed',
      'amqp-message-id': 'legacy-1',
      'app-id': 'legacy-billing',
      'x-trace': 't-1',
    });
    await plainSend(client, `/queue/${name}`, binary, { ...control, 'x-kind': 'blob' });
    await until('three deliveries', () => messages.length === 3);
    const [text, json, blob] = messages;

    expect(text!.id).toMatch(UUID);
    expect(text!.type).toBe('unknown');
    expect(text!.specversion).toBe('1.0');
    expect(text!.source).toBe('stomp://127.0.0.1:61613');
    expect(text!.time).toMatch(RFC3339);
    expect(Date.parse(text!.time)).toBeGreaterThanOrEqual(startedAt - 1_000);
    expect(text!.datacontenttype).toBe('text/plain');
    expect(text!.data).toBe('hello plain');
    expect(text!.attempt).toBe(1);
    expect(text!.redelivered).toBe(false);
    expect(text!.destination).toMatchObject({ kind: 'queue', name });
    expect(text!.headers).toEqual({ tenant: 'acme' });

    // `type`, `amqp-message-id` and `app-id` are what RabbitMQ maps to the AMQP properties: they fill the envelope.
    expect(json!.id).toBe('legacy-1');
    expect(json!.type).toBe('order.placed');
    expect(json!.source).toBe('legacy-billing');
    expect(json!.datacontenttype).toBe('application/json');
    expect(json!.data).toEqual({ orderId: 42, items: ['a', 'b'] });
    expect(json!.headers).toEqual({ 'x-trace': 't-1' });

    expect(blob!.id).toMatch(UUID);
    expect(blob!.id).not.toBe(text!.id);
    expect(blob!.type).toBe('unknown');
    expect(blob!.datacontenttype).toBe('application/octet-stream');
    expect(bytesOf(blob!.data).equals(binary)).toBe(true);
    expect(blob!.headers).toEqual({ 'x-kind': 'blob' });
    for (const m of messages) expectNoControlHeaders(m.headers);
  });
});

describe('stomp interop: Ferry producer → plain STOMP subscriber', () => {
  it('sends ce-* headers, content-type, persistent:true and the plain encoded bytes (all 256 byte values)', async () => {
    const name = queueName('stomp-out');
    const client = await plainClient();
    const frames = await plainSubscribe(client, `/queue/${name}`);
    const broker = await stomp({ source: 'ferry-interop' });
    const producer = broker.producer();
    const time = '2024-05-01T12:00:00.000Z';
    const data = { orderId: 7, lines: [{ sku: 'a', qty: 2 }] };
    await producer.publish(queue(name), {
      type: 'order.shipped',
      id: 'ferry-1',
      subject: 'order-7',
      key: 'customer-9',
      time,
      data,
      headers: { tenant: 'acme', 'x-correlation': 'c-9' },
    });
    const bytes = allBytes();
    await producer.publish(queue(name), { type: 'blob.stored', data: bytes });
    await until('two frames', () => frames.length === 2);

    const [first, second] = frames;
    expect(first!.headers).toMatchObject({
      'ce-id': 'ferry-1',
      'ce-type': 'order.shipped',
      'ce-source': 'ferry-interop',
      'ce-specversion': '1.0',
      'ce-time': time,
      'ce-subject': 'order-7',
      'ce-partitionkey': 'customer-9',
      'ce-datacontenttype': 'application/json',
      'content-type': 'application/json',
      persistent: 'true',
      tenant: 'acme',
      'x-correlation': 'c-9',
    });
    expect(Buffer.from(first!.binaryBody).toString('utf8')).toBe(JSON.stringify(data));

    expect(second!.headers['ce-id']).toMatch(UUID);
    expect(second!.headers['ce-type']).toBe('blob.stored');
    expect(second!.headers['ce-source']).toBe('ferry-interop');
    expect(second!.headers['ce-specversion']).toBe('1.0');
    expect(second!.headers['ce-time']).toMatch(RFC3339);
    expect(second!.headers['content-type']).toBe('application/octet-stream');
    expect(second!.headers['persistent']).toBe('true');
    expect(second!.headers['content-length']).toBe(String(bytes.length));
    expect(Buffer.from(second!.binaryBody).equals(bytes)).toBe(true);
  });

  it('publishes to queue(q, { durable: false }) that a subscriber declared (Ferry → Ferry)', async () => {
    // RabbitMQ's STOMP plugin reads a SEND's `persistent` header as the queue's `durable` parameter too:
    // `persistent:false` alone on /queue/<q> declares <q> exclusive + auto-delete, which RabbitMQ refuses
    // for the queue the subscriber declared (RESOURCE_LOCKED: ERROR, connection closed, publish resent
    // until publishTimeout). The transport must declare the queue's shape explicitly on SEND.
    const name = queueName('stomp-transient');
    const broker = await stomp({ publishTimeout: 5_000 });
    const errors: string[] = [];
    broker.on('error', (error) => errors.push(error.message));
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name, { durable: false }), handler);
    await broker.producer().publish(queue(name, { durable: false }), { type: 'ping', data: 'x' });
    await until('the delivery', () => messages.length === 1);
    expect(messages[0]!.data).toBe('x');
    expect(errors).toEqual([]);
  });
});

describe('stomp interop: Ferry over AMQP ↔ Ferry over STOMP on one RabbitMQ', () => {
  const time = '2024-06-01T08:30:00.123Z';

  function expectIntact(m: Message, source: string, id: string, data: unknown): void {
    expect(m.id).toBe(id);
    expect(m.type).toBe('order.placed');
    expect(m.source).toBe(source);
    expect(m.time).toBe(time);
    expect(m.subject).toBe('order-1');
    expect(m.key).toBe('customer-1');
    expect(m.specversion).toBe('1.0');
    expect(m.attempt).toBe(1);
    expect(m.headers).toEqual({ tenant: 'acme', 'x-trace': 'abc' });
    if (Buffer.isBuffer(data)) {
      expect(m.datacontenttype).toBe('application/octet-stream');
      expect(bytesOf(m.data).equals(data)).toBe(true);
    } else {
      expect(m.datacontenttype).toBe('application/json');
      expect(m.data).toEqual(data);
    }
  }

  const outgoing = (id: string, data: unknown) =>
    ({
      type: 'order.placed',
      id,
      subject: 'order-1',
      key: 'customer-1',
      time,
      data,
      headers: { tenant: 'acme', 'x-trace': 'abc' },
    }) as const;

  it('queue: AMQP → STOMP and STOMP → AMQP keep the envelope and binary data', async () => {
    const name = queueName('xproto-q');
    const back = queueName('xproto-q-back');
    const viaAmqp = await amqpFerry({ source: 'svc-amqp' });
    const viaStomp = await stomp({ source: 'svc-stomp' });
    const onStomp = collector();
    const onAmqp = collector();
    await viaStomp.consumer().subscribe(queue(name), onStomp.handler);
    await viaAmqp.consumer().subscribe(queue(back), onAmqp.handler);
    const binary = allBytes();

    await viaAmqp.producer().publish(queue(name), outgoing('a-1', { n: 1, text: 'héllo' }));
    await viaAmqp.producer().publish(queue(name), outgoing('a-2', binary));
    await until('AMQP → STOMP', () => onStomp.messages.length === 2);
    expectIntact(onStomp.messages[0]!, 'svc-amqp', 'a-1', { n: 1, text: 'héllo' });
    expectIntact(onStomp.messages[1]!, 'svc-amqp', 'a-2', binary);

    await viaStomp.producer().publish(queue(back), outgoing('s-1', { n: 2 }));
    await viaStomp.producer().publish(queue(back), outgoing('s-2', binary));
    await until('STOMP → AMQP', () => onAmqp.messages.length === 2);
    expectIntact(onAmqp.messages[0]!, 'svc-stomp', 's-1', { n: 2 });
    expectIntact(onAmqp.messages[1]!, 'svc-stomp', 's-2', binary);
  });

  it('topic: an AMQP and a STOMP member of one group share the group queue; private subscriptions get every message', async () => {
    const key = `xproto.${uniqueName('t')}.placed`;
    const group = uniqueName('billing');
    queues.add(`${key}.${group}`).add(`${key}.${group}.dlq`).add(`${key}.dlq`);
    const viaAmqp = await amqpFerry({ source: 'svc-amqp' });
    const viaStomp = await stomp({ source: 'svc-stomp' });
    const amqpMember = collector();
    const stompMember = collector();
    const amqpPrivate = collector();
    const stompPrivate = collector();
    await viaAmqp.consumer().subscribe(topic(key), amqpMember.handler, { group });
    await viaStomp.consumer().subscribe(topic(key), stompMember.handler, { group });
    await viaAmqp.consumer().subscribe(topic(key), amqpPrivate.handler);
    await viaStomp.consumer().subscribe(topic(key), stompPrivate.handler);
    const binary = allBytes();

    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const from = i % 2 === 0 ? viaAmqp : viaStomp;
      const id = `${i % 2 === 0 ? 'a' : 's'}-${i}`;
      ids.push(id);
      await from.producer().publish(topic(key), outgoing(id, i === 0 || i === 1 ? binary : { i }));
    }
    const members = (): Message[] => [...amqpMember.messages, ...stompMember.messages];
    await until('every message in the group', () => members().length >= ids.length);
    await until('every message in both private subscriptions', () => {
      return amqpPrivate.messages.length === ids.length && stompPrivate.messages.length === ids.length;
    });
    // Each message handled once across the group's two members.
    await observeFor(300);
    expect(
      members()
        .map((m) => m.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(amqpMember.messages.length).toBeGreaterThan(0);
    expect(stompMember.messages.length).toBeGreaterThan(0);
    expect(amqpPrivate.messages.map((m) => m.id)).toEqual(ids);
    expect(stompPrivate.messages.map((m) => m.id)).toEqual(ids);

    for (const m of [...members(), ...amqpPrivate.messages, ...stompPrivate.messages]) {
      const index = Number(m.id.split('-')[1]);
      expectIntact(m, m.id.startsWith('a') ? 'svc-amqp' : 'svc-stomp', m.id, index <= 1 ? binary : { i: index });
      expect(m.destination).toMatchObject({ kind: 'topic', name: key });
    }
  });
});

describe('stomp interop: STOMP 1.2 header escaping', () => {
  const tricky: Record<string, string> = {
    'x-colon': 'a:b::c',
    'x-newline': 'line1\nline2',
    'x-cr': 'before\rafter',
    'x-crlf': 'a\r\nb',
    'x-backslash': 'C:\\path\\to',
    'x-literal-backslash-n': 'a\\nb',
    'x-literal-escapes': '\\c\\r\\\\',
    'x-padded': '  padded  ',
    'x-tab': '\tt\t',
    'x-unicode': 'héllo 世界 😀',
    'x-empty': '',
  };

  it('unescapeHeaderValue follows STOMP 1.2: one left-to-right pass', () => {
    expect(unescapeHeaderValue('a\\cb')).toBe('a:b');
    expect(unescapeHeaderValue('a\\nb')).toBe('a\nb');
    expect(unescapeHeaderValue('a\\rb')).toBe('a\rb');
    expect(unescapeHeaderValue('a\\\\b')).toBe('a\\b');
    // An escaped backslash followed by n: a literal backslash-n, never a newline.
    expect(unescapeHeaderValue('a\\\\nb')).toBe('a\\nb');
    expect(unescapeHeaderValue('\\\\\\n')).toBe('\\\n');
    expect(unescapeHeaderValue('\\\\c')).toBe('\\c');
    expect(unescapeHeaderValue('  x  ')).toBe('  x  ');
    expect(unescapeHeaderValue('héllo 世界')).toBe('héllo 世界');
    expect(unescapeHeaderValue('')).toBe('');
    // Undefined escapes are kept as they are.
    expect(unescapeHeaderValue('a\\tb')).toBe('a\\tb');
    expect(unescapeHeaderValue('trailing\\')).toBe('trailing\\');
    // The inverse of the STOMP 1.2 escape for every tricky value.
    for (const value of Object.values(tricky)) {
      expect(unescapeHeaderValue(escapeHeaderValue(value))).toBe(value);
    }
  });

  it('the installed frame reader keeps values untrimmed and lets the first of repeated headers win', () => {
    installFrameReader();
    const frame = FrameImpl.fromRawFrame(
      {
        command: 'MESSAGE',
        headers: [
          ['x-pad', '  padded  '],
          ['x-dup', 'first'],
          ['x-dup', 'second'],
          ['x-lit', 'a\\\\nb'],
          ['x\\cname', 'v'],
        ],
        binaryBody: new Uint8Array([1, 0, 2]),
      },
      true,
    );
    expect(frame.headers).toEqual({ 'x-pad': '  padded  ', 'x-dup': 'first', 'x-lit': 'a\\nb', 'x:name': 'v' });
    expect([...frame.binaryBody]).toEqual([1, 0, 2]);
    // CONNECTED is never unescaped (STOMP 1.2).
    const connected = FrameImpl.fromRawFrame(
      { command: 'CONNECTED', headers: [['server', 'a\\cb']], binaryBody: new Uint8Array(0) },
      true,
    );
    expect(connected.headers['server']).toBe('a\\cb');
  });

  it('values with : \\n \\r \\\\, a literal backslash-n, padding and non-ASCII survive Ferry → Ferry', async () => {
    const name = queueName('stomp-escape');
    const broker = await stomp();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    await broker.producer().publish(queue(name), {
      type: 'escape.test',
      subject: 'sub:ject\nwith\\n',
      data: { ok: true },
      headers: tricky,
    });
    await until('the delivery', () => messages.length === 1);
    expect(messages[0]!.headers).toEqual(tricky);
    expect(messages[0]!.subject).toBe('sub:ject\nwith\\n');
  });

  it('the same values survive plain → Ferry, sent as raw escaped bytes and by a plain stompjs client', async () => {
    const name = queueName('stomp-escape-raw');
    const broker = await stomp();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    const lines = Object.entries(tricky).map(([k, v]) => `${k}:${escapeHeaderValue(v)}`);
    const receipt = uniqueName('r');
    const frame = Buffer.from(
      `SEND\ndestination:/queue/${name}\nreceipt:${receipt}\ncontent-type:text/plain\n${lines.join('\n')}\n\nraw\0`,
      'utf8',
    );
    await rawFrames([{ receipt, frame }]);
    await plainSend(await plainClient(), `/queue/${name}`, 'stompjs', { ...tricky, 'content-type': 'text/plain' });
    await until('both deliveries', () => messages.length === 2);
    expect(messages.map((m) => m.data)).toEqual(['raw', 'stompjs']);
    for (const m of messages) expect(m.headers).toEqual(tricky);
  });
});

describe('stomp interop: headers RabbitMQ echoes back', () => {
  it('never hands receipt, persistent, x-queue-type or other SEND/SUBSCRIBE headers to a handler', async () => {
    const name = queueName('stomp-echo');
    const key = `echo.${uniqueName('t')}`;
    const group = uniqueName('g');
    queues.add(`${key}.${group}`).add(`${key}.${group}.dlq`).add(`${key}.dlq`);
    const hints = { stomp: { headers: { 'x-queue-type': 'quorum', 'x-max-length': '1000' } } };
    const broker = await stomp();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name, hints), handler);
    const grouped = collector();
    const solo = collector();
    await broker.consumer().subscribe(topic(key), grouped.handler, { group });
    await broker.consumer().subscribe(topic(key), solo.handler);

    await broker.producer().publish(queue(name, hints), { type: 'ferry.sent', data: 1, headers: { app: 'kept' } });
    // A plain client sends every header RabbitMQ understands on SEND; they all come back on the MESSAGE.
    await plainSend(await plainClient(), `/queue/${name}`, '2', {
      'content-type': 'application/json',
      persistent: 'true',
      'x-queue-type': 'quorum',
      'x-max-length': '1000',
      priority: '3',
      'correlation-id': 'corr-1',
      'reply-to': '/queue/nowhere',
      expires: String(Date.now() + 60_000),
      'content-encoding': 'identity',
      'user-id': 'guest',
      app: 'kept',
    });
    await broker.producer().publish(topic(key), { type: 'topic.sent', data: 3, headers: { app: 'kept' } });
    await until('both queue deliveries', () => messages.length === 2);
    await until('the topic deliveries', () => grouped.messages.length === 1 && solo.messages.length === 1);
    for (const m of [...messages, ...grouped.messages, ...solo.messages]) {
      expect(m.headers).toEqual({ app: 'kept' });
    }
    expect(messages.map((m) => m.data)).toEqual([1, 2]);
  });
});

describe('stomp interop: web-STOMP (WebSocket, binary frames)', () => {
  it('publishes and consumes over ws://…/ws, every byte value and a 1 MiB body included', async () => {
    const name = queueName('stomp-ws');
    const broker = await stomp({}, WS_URL);
    expect(broker.transport).toBe('stomp');
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    const bytes = allBytes();
    const big = randomBytes(1024 * 1024);
    await broker.producer().publish(queue(name), { type: 'ws.json', data: { over: 'websocket' } });
    await broker.producer().publish(queue(name), { type: 'ws.bytes', data: bytes });
    await broker.producer().publish(queue(name), { type: 'ws.big', data: big });
    await until('three deliveries over WebSocket', () => messages.length === 3);
    expect(messages.map((m) => m.type)).toEqual(['ws.json', 'ws.bytes', 'ws.big']);
    expect(messages[0]!.data).toEqual({ over: 'websocket' });
    expect(bytesOf(messages[1]!.data).equals(bytes)).toBe(true);
    expect(bytesOf(messages[2]!.data).equals(big)).toBe(true);
  });

  it('a TCP subscriber receives what a WebSocket publisher sent, byte for byte', async () => {
    const name = queueName('stomp-ws-tcp');
    const overTcp = await stomp();
    const { messages, handler } = collector();
    await overTcp.consumer().subscribe(queue(name), handler);
    const overWs = await stomp({ source: 'ws-publisher' }, WS_URL);
    const bytes = allBytes();
    await overWs.producer().publish(queue(name), {
      type: 'ws.bytes',
      id: 'ws-1',
      data: bytes,
      headers: { 'x-padded': '  a:b\nc\\n  ' },
    });
    await until('the delivery over TCP', () => messages.length === 1);
    const m = messages[0]!;
    expect(m).toMatchObject({ id: 'ws-1', type: 'ws.bytes', source: 'ws-publisher' });
    expect(m.headers).toEqual({ 'x-padded': '  a:b\nc\\n  ' });
    expect(bytesOf(m.data).equals(bytes)).toBe(true);
  });
});

describe('stomp interop: structured content mode (application/cloudevents+json)', () => {
  it('publishes a CloudEvents JSON document a plain subscriber can read', async () => {
    const name = queueName('stomp-structured-out');
    const client = await plainClient();
    const frames = await plainSubscribe(client, `/queue/${name}`);
    const broker = await stomp({ source: 'ferry-interop' });
    const time = '2024-05-01T12:00:00.000Z';
    await broker.producer().publish(queue(name, { contentMode: 'structured' }), {
      type: 'order.shipped',
      id: 's-1',
      time,
      subject: 'order-7',
      data: { orderId: 7 },
      headers: { tenant: 'acme' },
    });
    await until('the structured frame', () => frames.length === 1);
    const frame = frames[0]!;
    expect(frame.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(frame.headers['persistent']).toBe('true');
    expect(frame.headers['ce-id']).toBeUndefined();
    const doc = JSON.parse(Buffer.from(frame.binaryBody).toString('utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({
      specversion: '1.0',
      id: 's-1',
      type: 'order.shipped',
      source: 'ferry-interop',
      time,
      subject: 'order-7',
      datacontenttype: 'application/json',
      tenant: 'acme',
      data: { orderId: 7 },
    });
  });

  it('reads a plain CloudEvents JSON document; Ferry → Ferry structured round trip', async () => {
    const name = queueName('stomp-structured-in');
    const broker = await stomp({ source: 'ferry-interop' });
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name, { contentMode: 'structured' }), handler);
    const doc = {
      specversion: '1.0',
      id: 'ce-42',
      type: 'com.example.user.created',
      source: '/legacy/users',
      time: '2024-03-01T10:00:00Z',
      subject: 'user-42',
      datacontenttype: 'application/json',
      tenant: 'acme',
      data: { userId: 42, name: 'Ada' },
    };
    await plainSend(await plainClient(), `/queue/${name}`, JSON.stringify(doc), {
      'content-type': 'application/cloudevents+json',
    });
    await broker.producer().publish(queue(name, { contentMode: 'structured' }), {
      type: 'order.shipped',
      id: 's-2',
      data: Buffer.from([0, 1, 2, 255]),
      headers: { tenant: 'acme' },
    });
    await until('both deliveries', () => messages.length === 2);
    const m = messages[0]!;
    expect(m.id).toBe('ce-42');
    expect(m.type).toBe('com.example.user.created');
    expect(m.source).toBe('/legacy/users');
    expect(m.time).toBe('2024-03-01T10:00:00Z');
    expect(m.subject).toBe('user-42');
    expect(m.datacontenttype).toBe('application/json');
    expect(m.data).toEqual({ userId: 42, name: 'Ada' });
    expect(m.headers).toEqual({ tenant: 'acme' });
    const own = messages[1]!;
    expect(own).toMatchObject({ id: 's-2', type: 'order.shipped', source: 'ferry-interop' });
    expect(own.headers).toEqual({ tenant: 'acme' });
    expect(bytesOf(own.data).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
  });

  it('dead-letters an invalid structured document to <q>.dlq with FERRY_DECODE without calling the handler', async () => {
    const name = queueName('stomp-structured-bad');
    queues.add(`${name}.dlq.dlq`);
    const broker = await stomp();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    const client = await plainClient();
    const missingId = JSON.stringify({ specversion: '1.0', type: 't.bad', source: '/x', data: { n: 1 } });
    const notJson = '{"specversion": "1.0", "id": ';
    await plainSend(client, `/queue/${name}`, missingId, { 'content-type': 'application/cloudevents+json' });
    await plainSend(client, `/queue/${name}`, notJson, {
      'content-type': 'application/cloudevents+json; charset=utf-8',
    });
    const good = JSON.stringify({ specversion: '1.0', id: 'ok-1', type: 't.good', source: '/x', data: { n: 2 } });
    await plainSend(client, `/queue/${name}`, good, { 'content-type': 'application/cloudevents+json' });
    await until('the valid document', () => messages.length === 1);
    // FIFO queue, concurrency 1: both invalid documents were settled before the valid one.
    expect(messages.map((m) => m.id)).toEqual(['ok-1']);

    const dead = collector();
    await broker.consumer().subscribe(queue(`${name}.dlq`), dead.handler, { decode: false, retry: { maxAttempts: 1 } });
    await until('both dead letters', () => dead.messages.length === 2);
    expect(dead.messages.map((d) => bytesOf(d.data).toString('utf8')).sort()).toEqual([missingId, notJson].sort());
    for (const d of dead.messages) {
      expect(d.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.DECODE);
      expect(d.headers[HEADER_DEAD_LETTER_ORIGIN]).toBe(`queue:${name}`);
    }
  });
});
