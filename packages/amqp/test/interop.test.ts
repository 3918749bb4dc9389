import amqp, { type Channel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import {
  type Broker,
  ConfigurationError,
  type ConnectOptions,
  ErrorCode,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  type Message,
  queue,
  topic,
} from '@ferry/core';
import { rejection, uniqueName, waitFor } from '@ferry/conformance';
import { afterEach, describe, expect, it } from 'vitest';
import { AMQP_URL, connectAmqp } from './broker.js';

/**
 * Interoperability with plain AMQP 0-9-1 clients on the real RabbitMQ: what a non-Ferry producer sends
 * reaches a Ferry handler with a synthesized envelope, what Ferry sends is an ordinary AMQP message a
 * plain consumer can read, structured CloudEvents documents work both ways, and Ferry subscribes to and
 * publishes on topology a "legacy" service owns (fanout, direct and headers exchanges, `passive: true`).
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WAIT_MS = 10_000;

const queues = new Set<string>();
const exchanges = new Set<string>();
const closers: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  const connection = await amqp.connect(AMQP_URL);
  try {
    for (const name of queues) await drop(connection, (channel) => channel.deleteQueue(name));
    for (const name of exchanges) await drop(connection, (channel) => channel.deleteExchange(name));
  } finally {
    queues.clear();
    exchanges.clear();
    await connection.close();
  }
});

/** Runs one deletion on a channel of its own: a 404 closes only that channel. */
async function drop(connection: amqp.ChannelModel, run: (channel: Channel) => Promise<unknown>): Promise<void> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  await run(channel).catch(() => undefined);
  await channel.close().catch(() => undefined);
}

/** A Ferry broker closed after the test. */
async function ferry(options: ConnectOptions = {}): Promise<Broker> {
  const broker = await connectAmqp(options);
  closers.push(() => broker.close());
  return broker;
}

/** A plain amqplib connection ("a service without Ferry") closed after the test. */
async function plain(): Promise<{ channel: ConfirmChannel; connection: amqp.ChannelModel }> {
  const connection = await amqp.connect(AMQP_URL, { noDelay: true });
  closers.push(() => connection.close());
  const channel = await connection.createConfirmChannel();
  return { channel, connection };
}

/** A plain publish, resolved on the broker's confirm. */
function send(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: string | Buffer,
  options: Options.Publish = {},
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    channel.publish(exchange, routingKey, Buffer.from(body), options, (error: unknown) =>
      error === null || error === undefined ? resolve() : reject(new Error('plain publish not confirmed')),
    );
  });
}

/** Polls `basic.get` until a message is there (bounded). */
async function getOne(channel: Channel, queueName: string): Promise<GetMessage> {
  const box: { message?: GetMessage } = {};
  await waitFor(
    async () => {
      const got = await channel.get(queueName, { noAck: true });
      if (got !== false) box.message = got;
      return got !== false;
    },
    WAIT_MS,
    `a message on queue ${queueName}`,
  );
  return box.message!;
}

/** Collects what a Ferry handler receives. */
function collector<T = unknown>(): { messages: Message<T>[]; handler: (m: Message<T>) => void } {
  const messages: Message<T>[] = [];
  return { messages, handler: (m) => void messages.push(m) };
}

function until(what: string, condition: () => boolean): Promise<void> {
  return waitFor(condition, WAIT_MS, what);
}

describe('amqp interop: plain AMQP producer → Ferry consumer', () => {
  it('synthesizes the envelope from AMQP properties and stringifies foreign header values', async () => {
    const name = uniqueName('interop-in');
    queues.add(name).add(`${name}.dlq`);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    const broker = await ferry();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);

    const stamp = 1_700_000_000; // AMQP timestamps are POSIX seconds
    const startedAt = Date.now();
    await send(channel, '', name, JSON.stringify({ orderId: 42, items: ['a', 'b'], paid: true }), {
      contentType: 'application/json',
      messageId: 'legacy-1',
      type: 'order.placed',
      timestamp: stamp,
      appId: 'legacy-billing',
      headers: {
        tenant: 'acme',
        retries: 3,
        big: 70_000,
        huge: 5_000_000_000,
        ratio: 0.5,
        negative: -7,
        urgent: true,
        archived: false,
        blob: Buffer.from('bytes!'),
        meta: { region: 'eu', level: 2, flag: false },
        list: ['x', 1, true],
      },
    });
    // No properties at all: no message id, no type, no content type, no timestamp, no headers.
    await send(channel, '', name, 'hello plain');
    await send(channel, '', name, 'hello text', { contentType: 'text/plain' });
    await until('three deliveries', () => messages.length === 3);
    const [json, bare, text] = messages;

    expect(json!.id).toBe('legacy-1');
    expect(json!.type).toBe('order.placed');
    expect(json!.source).toBe('legacy-billing');
    expect(json!.specversion).toBe('1.0');
    expect(json!.time).toBe(new Date(stamp * 1000).toISOString());
    expect(json!.time).toMatch(RFC3339);
    expect(json!.datacontenttype).toBe('application/json');
    expect(json!.data).toEqual({ orderId: 42, items: ['a', 'b'], paid: true });
    expect(json!.attempt).toBe(1);
    expect(json!.redelivered).toBe(false);
    expect(json!.destination).toMatchObject({ kind: 'queue', name });
    // Every value a string; nothing else (no ce-*, x-*, ferry-*) added.
    expect(json!.headers).toEqual({
      tenant: 'acme',
      retries: '3',
      big: '70000',
      huge: '5000000000',
      ratio: '0.5',
      negative: '-7',
      urgent: 'true',
      archived: 'false',
      blob: 'bytes!',
      meta: '{"region":"eu","level":2,"flag":false}',
      list: '["x",1,true]',
    });
    for (const value of Object.values(json!.headers)) expect(typeof value).toBe('string');

    // A message without any property still arrives: generated id, type 'unknown', bytes (core decodes a
    // body without content type as application/octet-stream, handing the handler a Buffer).
    expect(bare!.id).toMatch(UUID);
    expect(bare!.type).toBe('unknown');
    expect(bare!.source).toMatch(/^amqp:\/\/127\.0\.0\.1:5672/);
    expect(bare!.source).not.toContain('guest');
    expect(bare!.time).toMatch(RFC3339);
    expect(Date.parse(bare!.time)).toBeGreaterThanOrEqual(startedAt - 1_000);
    expect(bare!.datacontenttype).toBe('application/octet-stream');
    expect(Buffer.isBuffer(bare!.data)).toBe(true);
    expect((bare!.data as Buffer).toString('utf8')).toBe('hello plain');
    expect(bare!.headers).toEqual({});

    expect(text!.id).toMatch(UUID);
    expect(text!.id).not.toBe(bare!.id);
    expect(text!.datacontenttype).toBe('text/plain');
    expect(text!.data).toBe('hello text');
  });

  /** Publishes one JSON message with `headers` from a plain client and returns the headers the handler saw. */
  async function headersSeen(headers: Record<string, unknown>): Promise<Readonly<Record<string, string>>> {
    const name = uniqueName('interop-typed');
    queues.add(name).add(`${name}.dlq`);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    const broker = await ferry();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);
    await send(channel, '', name, '{}', { contentType: 'application/json', headers });
    await until('the delivery', () => messages.length === 1);
    return messages[0]!.headers;
  }

  it('renders an AMQP timestamp header (field type T, as .NET/Java clients send dates) as RFC 3339', async () => {
    const seconds = 1_700_000_000;
    const headers = await headersSeen({ sentAt: { '!': 'timestamp', value: seconds } });
    // wire.ts headerText() renders a Date as ISO time, but amqplib decodes a 'T' value as { '!': 'timestamp', value }.
    expect(headers['sentAt']).toBe(new Date(seconds * 1000).toISOString());
  });

  it('renders a byte array nested in a table header as UTF-8 text, like a top-level one', async () => {
    const headers = await headersSeen({ top: Buffer.from('top bytes'), nested: { raw: Buffer.from('inner'), n: 1 } });
    expect(headers['top']).toBe('top bytes');
    // wire.ts headerText()'s replacer turns Buffers into UTF-8, but JSON.stringify calls Buffer#toJSON first.
    expect(headers['nested']).toBe('{"raw":"inner","n":1}');
  });

  it('drops the headers RabbitMQ adds when it dead-letters (x-death, x-first-death-*)', async () => {
    const name = uniqueName('interop-xdeath');
    const parking = `${name}.parking`;
    queues.add(name).add(`${name}.dlq`).add(parking);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    // Messages expire here at once and RabbitMQ dead-letters them into `name`, adding its own headers.
    await channel.assertQueue(parking, {
      durable: true,
      arguments: { 'x-message-ttl': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': name },
    });
    const broker = await ferry();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);

    await send(channel, '', parking, '{"n":1}', {
      contentType: 'application/json',
      messageId: 'expired-1',
      headers: { app: 'kept' },
    });
    await until('the dead-lettered delivery', () => messages.length === 1);
    expect(messages[0]!.id).toBe('expired-1');
    expect(messages[0]!.data).toEqual({ n: 1 });
    expect(messages[0]!.headers).toEqual({ app: 'kept' });
  });
});

describe('amqp interop: Ferry producer → plain AMQP consumer', () => {
  it('sends the plain encoded data with AMQP properties and ce-* headers to a queue', async () => {
    const name = uniqueName('interop-out');
    const transient = uniqueName('interop-out-transient');
    queues.add(name).add(transient);
    const broker = await ferry({ source: 'ferry-interop' });
    const producer = broker.producer();
    const time = '2024-05-01T12:00:00.000Z';
    await producer.publish(queue(name), {
      type: 'order.shipped',
      id: 'ferry-1',
      subject: 'order-7',
      time,
      data: { orderId: 7, lines: [{ sku: 'a', qty: 2 }] },
      headers: { tenant: 'acme', 'x-correlation-id': 'c-9' },
    });
    await producer.publish(queue(transient, { durable: false }), { type: 'ping', data: 'x' });
    const { channel } = await plain();

    const message = await getOne(channel, name);
    expect(message.content.toString('utf8')).toBe(JSON.stringify({ orderId: 7, lines: [{ sku: 'a', qty: 2 }] }));
    const p = message.properties;
    expect(p.messageId).toBe('ferry-1');
    expect(p.type).toBe('order.shipped');
    expect(p.appId).toBe('ferry-interop');
    expect(p.contentType).toBe('application/json');
    expect(p.timestamp).toBe(Date.parse(time) / 1000);
    expect(p.deliveryMode).toBe(2);
    expect(p.headers).toMatchObject({
      'ce-id': 'ferry-1',
      'ce-type': 'order.shipped',
      'ce-source': 'ferry-interop',
      'ce-specversion': '1.0',
      'ce-time': time,
      'ce-datacontenttype': 'application/json',
      'ce-subject': 'order-7',
      tenant: 'acme',
      'x-correlation-id': 'c-9',
    });
    expect(message.fields).toMatchObject({ exchange: '', routingKey: name });

    const ping = await getOne(channel, transient);
    expect(ping.content.toString('utf8')).toBe('x');
    expect(ping.properties.contentType).toBe('text/plain; charset=utf-8');
    expect(ping.properties.deliveryMode).not.toBe(2);
    expect(ping.properties.messageId).toMatch(UUID);
    expect(ping.properties.headers?.['ce-id']).toBe(ping.properties.messageId);
    expect(ping.properties.headers?.['ce-time']).toMatch(RFC3339);
  });

  it('publishes a topic to amq.topic with the topic as routing key', async () => {
    const key = `interop.${uniqueName('t')}.created`;
    const { channel } = await plain();
    const { queue: bound } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(bound, 'amq.topic', key);
    const broker = await ferry({ source: 'ferry-interop' });
    await broker.producer().publish(topic(key), { type: 'thing.created', id: 't-1', data: { ok: true } });

    const message = await getOne(channel, bound);
    expect(message.fields).toMatchObject({ exchange: 'amq.topic', routingKey: key });
    expect(JSON.parse(message.content.toString('utf8'))).toEqual({ ok: true });
    expect(message.properties).toMatchObject({
      messageId: 't-1',
      type: 'thing.created',
      appId: 'ferry-interop',
      contentType: 'application/json',
      deliveryMode: 2,
    });
    expect(message.properties.headers).toMatchObject({
      'ce-id': 't-1',
      'ce-type': 'thing.created',
      'ce-source': 'ferry-interop',
      'ce-specversion': '1.0',
    });
  });
});

describe('amqp interop: structured content mode (application/cloudevents+json)', () => {
  it('reads a plain producer’s CloudEvents JSON document into the message attributes and data', async () => {
    const name = uniqueName('interop-structured-in');
    queues.add(name).add(`${name}.dlq`);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    const broker = await ferry();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);

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
    await send(channel, '', name, JSON.stringify(doc), { contentType: 'application/cloudevents+json' });
    await until('the structured delivery', () => messages.length === 1);
    const m = messages[0]!;
    expect(m.id).toBe('ce-42');
    expect(m.type).toBe('com.example.user.created');
    expect(m.source).toBe('/legacy/users');
    expect(m.time).toBe('2024-03-01T10:00:00Z');
    expect(m.subject).toBe('user-42');
    expect(m.datacontenttype).toBe('application/json');
    expect(m.data).toEqual({ userId: 42, name: 'Ada' });
    expect(m.headers).toEqual({ tenant: 'acme' });
  });

  it('dead-letters an invalid structured document with FERRY_DECODE without calling the handler', async () => {
    const name = uniqueName('interop-structured-bad');
    queues.add(name).add(`${name}.dlq`);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    const broker = await ferry();
    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(name), handler);

    const missingId = JSON.stringify({ specversion: '1.0', type: 't.bad', source: '/x', data: { n: 1 } });
    const notJson = '{"specversion": "1.0", "id": ';
    await send(channel, '', name, missingId, { contentType: 'application/cloudevents+json' });
    await send(channel, '', name, notJson, { contentType: 'application/cloudevents+json; charset=utf-8' });
    const good = JSON.stringify({ specversion: '1.0', id: 'ok-1', type: 't.good', source: '/x', data: { n: 2 } });
    await send(channel, '', name, good, { contentType: 'application/cloudevents+json' });
    await until('the valid document', () => messages.length === 1);
    // The queue is FIFO and concurrency is 1: both invalid documents were settled before the valid one.
    expect(messages.map((m) => m.id)).toEqual(['ok-1']);

    const first = await getOne(channel, `${name}.dlq`);
    const second = await getOne(channel, `${name}.dlq`);
    const dead = [first, second];
    expect(dead.map((d) => d.content.toString('utf8')).sort()).toEqual([missingId, notJson].sort());
    for (const d of dead) {
      expect(d.properties.headers?.[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.DECODE);
      expect(d.properties.headers?.[HEADER_DEAD_LETTER_ORIGIN]).toBe(`queue:${name}`);
    }
  });

  it('lets a Ferry consumer read that dead letter with { decode: false } (original bytes, dead-letter headers)', async () => {
    const name = uniqueName('interop-structured-dlq');
    queues.add(name).add(`${name}.dlq`).add(`${name}.dlq.dlq`);
    const { channel } = await plain();
    await channel.assertQueue(name, { durable: true });
    const broker = await ferry();
    await broker.consumer().subscribe(queue(name), () => undefined);
    const missingId = JSON.stringify({ specversion: '1.0', type: 't.bad', source: '/x', data: { n: 1 } });
    await send(channel, '', name, missingId, { contentType: 'application/cloudevents+json' });

    const { messages, handler } = collector();
    await broker.consumer().subscribe(queue(`${name}.dlq`), handler, { decode: false, retry: { maxAttempts: 1 } });
    // Fails today: the dead letter keeps content type application/cloudevents+json, so wire.ts fromAmqp()
    // decodes the body as a structured document again, fails again, and it moves on to `<name>.dlq.dlq`.
    await until('the dead letter in a Ferry handler', () => messages.length === 1);
    const dead = messages[0]!;
    expect(Buffer.from(dead.data as Uint8Array).toString('utf8')).toBe(missingId);
    expect(dead.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.DECODE);
    expect(dead.headers[HEADER_DEAD_LETTER_ORIGIN]).toBe(`queue:${name}`);
  });

  it('publishes a CloudEvents JSON document body with queue(name, { contentMode: "structured" })', async () => {
    const name = uniqueName('interop-structured-out');
    queues.add(name);
    const broker = await ferry({ source: 'ferry-interop' });
    const time = '2024-05-01T12:00:00.000Z';
    await broker.producer().publish(queue(name, { contentMode: 'structured' }), {
      type: 'order.shipped',
      id: 's-1',
      time,
      subject: 'order-7',
      data: { orderId: 7 },
      headers: { tenant: 'acme' },
    });
    const { channel } = await plain();
    const message = await getOne(channel, name);
    expect(message.properties.contentType).toMatch(/^application\/cloudevents\+json/);
    expect(message.properties.messageId).toBe('s-1');
    expect(message.properties.deliveryMode).toBe(2);
    const doc = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
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
});

describe('amqp interop: brownfield topology owned by a legacy service', () => {
  it('consumes from and publishes to a legacy fanout exchange with passive: true, with and without a group', async () => {
    const exchange = uniqueName('user-updated');
    const group = uniqueName('profile');
    const legacyQueue = uniqueName('legacy-user-updated');
    exchanges.add(exchange);
    queues.add(legacyQueue).add(`user-updated.${group}`).add(`user-updated.${group}.dlq`);
    const legacy = await plain();
    // Declared the way the legacy service wants it (non-durable): Ferry declaring it as its own durable
    // topic exchange would fail with 406, so arriving here proves passive only checks.
    await legacy.channel.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false });
    await legacy.channel.assertQueue(legacyQueue, { durable: false });
    await legacy.channel.bindQueue(legacyQueue, exchange, '');

    const hints = { amqp: { exchange, exchangeType: 'fanout', passive: true } } as const;
    const broker = await ferry({ source: 'ferry-profile' });
    const grouped = collector<{ userId: number }>();
    const solo = collector<{ userId: number }>();
    await broker.consumer().subscribe(topic('user-updated', hints), grouped.handler, { group });
    await broker.consumer().subscribe(topic('user-updated', hints), solo.handler);

    await send(legacy.channel, exchange, '', JSON.stringify({ userId: 1 }), { contentType: 'application/json' });
    await until(
      'the legacy event in both subscriptions',
      () => grouped.messages.length === 1 && solo.messages.length === 1,
    );
    for (const m of [grouped.messages[0]!, solo.messages[0]!]) {
      expect(m.data).toEqual({ userId: 1 });
      expect(m.type).toBe('unknown');
      expect(m.id).toMatch(UUID);
      expect(m.datacontenttype).toBe('application/json');
      expect(m.time).toMatch(RFC3339);
      expect(m.destination).toMatchObject({ kind: 'topic', name: 'user-updated' });
    }
    const legacyCopy = await getOne(legacy.channel, legacyQueue);
    expect(JSON.parse(legacyCopy.content.toString('utf8'))).toEqual({ userId: 1 });

    await broker.producer().publish(topic('user-updated', hints), {
      type: 'user.updated',
      id: 'u-2',
      data: { userId: 2 },
    });
    const fromFerry = await getOne(legacy.channel, legacyQueue);
    expect(fromFerry.fields.exchange).toBe(exchange);
    expect(JSON.parse(fromFerry.content.toString('utf8'))).toEqual({ userId: 2 });
    expect(fromFerry.properties).toMatchObject({ messageId: 'u-2', type: 'user.updated', appId: 'ferry-profile' });
    expect(fromFerry.properties.headers).toMatchObject({ 'ce-id': 'u-2', 'ce-type': 'user.updated' });
    await until(
      'the Ferry event in both subscriptions',
      () => grouped.messages.length === 2 && solo.messages.length === 2,
    );
    for (const m of [grouped.messages[1]!, solo.messages[1]!]) {
      expect(m).toMatchObject({ id: 'u-2', type: 'user.updated', source: 'ferry-profile', data: { userId: 2 } });
    }
    // Ferry left the exchange as the legacy service declared it.
    const check = await legacy.connection.createChannel();
    await expect(check.checkExchange(exchange)).resolves.toBeDefined();
    await check.close();
  });

  it('binds to a legacy direct exchange by routing key', async () => {
    const exchange = uniqueName('billing');
    const group = uniqueName('ledger');
    exchanges.add(exchange);
    queues.add(`invoice.created.${group}`).add(`invoice.created.${group}.dlq`);
    const legacy = await plain();
    await legacy.channel.assertExchange(exchange, 'direct', { durable: false });
    const hints = { amqp: { exchange, exchangeType: 'direct', passive: true } } as const;
    const broker = await ferry();
    const { messages, handler } = collector<{ invoice: string }>();
    await broker.consumer().subscribe(topic('invoice.created', hints), handler, { group });

    await send(legacy.channel, exchange, 'invoice.voided', '{"invoice":"void"}', { contentType: 'application/json' });
    await send(legacy.channel, exchange, 'invoice.created', '{"invoice":"inv-1"}', {
      contentType: 'application/json',
      type: 'invoice.created',
    });
    await until('the matching event', () => messages.length === 1);
    // FIFO group queue: had the non-matching key been routed, it would have arrived first.
    expect(messages.map((m) => m.data.invoice)).toEqual(['inv-1']);
    expect(messages[0]!.type).toBe('invoice.created');
    expect(messages[0]!.destination).toMatchObject({ kind: 'topic', name: 'invoice.created' });
  });

  it('binds to a legacy headers exchange with bindingArguments: only matching messages arrive', async () => {
    const exchange = uniqueName('regions');
    exchanges.add(exchange);
    const legacy = await plain();
    await legacy.channel.assertExchange(exchange, 'headers', { durable: true });
    const hints = {
      amqp: { exchange, exchangeType: 'headers', passive: true, bindingArguments: { 'x-match': 'all', region: 'eu' } },
    } as const;
    const broker = await ferry();
    const { messages, handler } = collector<string>();
    await broker.consumer().subscribe(topic('orders', hints), handler);

    const text = { contentType: 'text/plain' };
    await send(legacy.channel, exchange, '', 'legacy-us', { ...text, headers: { region: 'us' } });
    await send(legacy.channel, exchange, '', 'legacy-none', text);
    await send(legacy.channel, exchange, '', 'legacy-eu', { ...text, headers: { region: 'eu', tier: 'gold' } });
    const producer = broker.producer();
    await producer.publish(topic('orders', hints), { type: 'order', data: 'ferry-us', headers: { region: 'us' } });
    await producer.publish(topic('orders', hints), { type: 'order', data: 'ferry-eu', headers: { region: 'eu' } });
    await until('both matching messages', () => messages.length === 2);
    // FIFO private queue: a non-matching message routed by mistake would be in this list before these.
    expect(messages.map((m) => m.data)).toEqual(['legacy-eu', 'ferry-eu']);
    expect(messages[0]!.headers).toEqual({ region: 'eu', tier: 'gold' });
    expect(messages[1]!.headers).toMatchObject({ region: 'eu' });
    expect(messages[1]!.destination).toMatchObject({ kind: 'topic', name: 'orders' });
  });

  /** A broker, its error events, and a queue round trip proving it still works. */
  async function usableBroker(): Promise<{ broker: Broker; errors: unknown[]; stillWorks: () => Promise<void> }> {
    // A short publishTimeout bounds subscribe()'s wait, so a hang shows as a failed assertion, not a test timeout.
    const broker = await ferry({ publishTimeout: 5_000 });
    const errors: unknown[] = [];
    broker.on('error', (e) => void errors.push(e));
    const stillWorks = async (): Promise<void> => {
      const work = uniqueName('interop-after');
      queues.add(work).add(`${work}.dlq`);
      const { messages, handler } = collector();
      await broker.consumer().subscribe(queue(work), handler);
      await broker.producer().publish(queue(work), { type: 'after', data: { ok: 1 } });
      await until('a message after the refused exchange', () => messages.length === 1);
      expect(messages[0]!.data).toEqual({ ok: 1 });
      expect(broker.health().status).toBe('up');
    };
    return { broker, errors, stillWorks };
  }

  it('publishing with passive: true to a missing exchange rejects with a typed error naming it; the broker stays usable', async () => {
    const missing = uniqueName('missing-exchange');
    const { broker, errors, stillWorks } = await usableBroker();
    const hints = { amqp: { exchange: missing, exchangeType: 'fanout', passive: true } } as const;
    const started = Date.now();
    const error = await rejection(broker.producer().publish(topic('user-updated', hints), { type: 't', data: 1 }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.INVALID_DESTINATION);
    expect((error as Error).message).toContain(missing);
    expect(Date.now() - started).toBeLessThan(3_000);
    await stillWorks();
    expect(errors).toEqual([]);
  });

  it('subscribing with passive: true to a missing exchange rejects at once with a typed error naming it; nothing half-made; the broker stays usable', async () => {
    const missing = uniqueName('missing-exchange');
    const group = uniqueName('g');
    queues.add(`user-updated.${group}`);
    const { broker, errors, stillWorks } = await usableBroker();
    const hints = { amqp: { exchange: missing, exchangeType: 'fanout', passive: true } } as const;
    const consumer = broker.consumer();
    for (const options of [{}, { group }]) {
      const started = Date.now();
      const error = await rejection(consumer.subscribe(topic('user-updated', hints), () => undefined, options));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).code).toBe(ErrorCode.INVALID_DESTINATION);
      expect((error as Error).message).toContain(missing);
      expect(Date.now() - started).toBeLessThan(3_000);
    }
    // The group queue was not declared before the exchange check failed.
    const { connection } = await plain();
    const probe = await connection.createChannel();
    probe.on('error', () => undefined);
    await expect(probe.checkQueue(`user-updated.${group}`)).rejects.toThrow(/404|NOT_FOUND/);
    await stillWorks();
    expect(errors).toEqual([]);
  });
});
