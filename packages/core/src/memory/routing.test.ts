import { describe, expect, it } from 'vitest';
import { deferred, uniqueName, waitFor, memoryBrokers } from '../../test/helpers.js';
import type { Broker } from '../broker.js';
import { queue, topic } from '../destination.js';
import { ErrorCode } from '../errors.js';
import type { Message } from '../message.js';
import { memoryHub } from './hub.js';

// A transport package adds its hints by module augmentation; core never reads them.
declare module '../destination.js' {
  interface TransportHints {
    readonly example?: { readonly exchange: string; readonly passive?: boolean };
  }
}

const connectTo = memoryBrokers();
const open = (hub: string, source = 'routing-test'): Promise<Broker> => connectTo(hub, { source });

describe('memory transport: routing and delivery', () => {
  it('delivers every attribute, data and header intact, also when published before the subscriber exists', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const time = new Date('2026-01-02T03:04:05.678Z');
    await broker.producer().publish(q, {
      type: 'order.placed',
      id: 'id-1',
      subject: 'orders/1',
      key: 'customer-7',
      time,
      data: { orderId: 'o-1', total: 12.5, items: [{ sku: 'é€😀', qty: 2 }] },
      headers: { 'x-correlation-id': 'c:1\nline2\\x', traceid: 'ü' },
    });
    expect(memoryHub(hub).stats(q.name)).toEqual({ ready: 1, unacked: 0, consumers: 0 });
    const received: Message[] = [];
    await broker.consumer().subscribe(q, (m) => void received.push(m));
    await waitFor(() => received.length === 1);
    const m = received[0]!;
    expect(m).toMatchObject({
      id: 'id-1',
      type: 'order.placed',
      source: 'routing-test',
      time: time.toISOString(),
      specversion: '1.0',
      datacontenttype: 'application/json',
      subject: 'orders/1',
      key: 'customer-7',
      data: { orderId: 'o-1', total: 12.5, items: [{ sku: 'é€😀', qty: 2 }] },
      headers: { 'x-correlation-id': 'c:1\nline2\\x', traceid: 'ü' },
      attempt: 1,
      redelivered: false,
      destination: q,
    });
    expect(m.signal.aborted).toBe(false);
  });

  it('keeps payloads byte-exact: all 256 byte values, empty, unicode text, 1 MiB', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('q'));
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(1024 * 1024, 7);
    const payloads: unknown[] = [bytes, '', 'Grüße, 世界 🚢', big, null, [], { nested: { deep: [1, { x: true }] } }];
    const received: unknown[] = [];
    await broker.consumer().subscribe(q, (m) => void received.push(m.data));
    const producer = broker.producer();
    for (const data of payloads) await producer.publish(q, { type: 'p', data });
    await waitFor(() => received.length === payloads.length);
    expect(Buffer.compare(received[0] as Buffer, bytes)).toBe(0);
    expect(received.slice(1, 3)).toEqual(['', 'Grüße, 世界 🚢']);
    expect(Buffer.compare(received[3] as Buffer, big)).toBe(0);
    expect(received.slice(4)).toEqual([null, [], { nested: { deep: [1, { x: true }] } }]);
  });

  it('shares a queue among competing consumers: each message exactly once', async () => {
    const hub = uniqueName('hub');
    const [a, b] = [await open(hub), await open(hub)];
    const q = queue(uniqueName('work'));
    const seen = new Map<string, number>();
    const byConsumer = [0, 0];
    const handler = (i: number) => (m: Message) => {
      seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
      byConsumer[i]!++;
    };
    await a.consumer().subscribe(q, handler(0), { concurrency: 4 });
    await b.consumer().subscribe(q, handler(1), { concurrency: 4 });
    const producer = a.producer();
    await Promise.all(Array.from({ length: 200 }, (_, i) => producer.publish(q, { type: 'job', data: i })));
    await waitFor(() => seen.size === 200);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(byConsumer[0]! > 0 && byConsumer[1]! > 0).toBe(true);
  });

  it('fans a topic out to every group once, members of a group compete, a group-less subscription sees all', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const t = topic(`${uniqueName('orders')}.placed`);
    const counts: Record<string, string[]> = { billing1: [], billing2: [], shipping: [], private: [] };
    const consumer = broker.consumer();
    const record = (name: string) => (m: Message) => void counts[name]!.push(m.id);
    await consumer.subscribe(t, record('billing1'), { group: 'billing' });
    await consumer.subscribe(t, record('billing2'), { group: 'billing' });
    await consumer.subscribe(t, record('shipping'), { group: 'shipping' });
    await consumer.subscribe(t, record('private'));
    const producer = broker.producer();
    for (let i = 0; i < 20; i++) await producer.publish(t, { type: 'order.placed', data: i });
    await waitFor(
      () =>
        counts['billing1']!.length + counts['billing2']!.length === 20 &&
        counts['shipping']!.length === 20 &&
        counts['private']!.length === 20,
    );
    const billing = [...counts['billing1']!, ...counts['billing2']!];
    expect(new Set(billing).size).toBe(20);
    expect(counts['billing1']!.length).toBeGreaterThan(0);
    expect(counts['billing2']!.length).toBeGreaterThan(0);
    expect(new Set(counts['shipping']).size).toBe(20);
  });

  it('matches * (one word) and # (any words) and reports the concrete key as the destination', async () => {
    const broker = await open(uniqueName('hub'));
    const root = uniqueName('shop');
    const star: string[] = [];
    const hash: string[] = [];
    const consumer = broker.consumer();
    await consumer.subscribe(topic(`${root}.*`), (m) => void star.push(m.destination.name));
    await consumer.subscribe(topic(`${root}.#`), (m) => void hash.push(m.destination.name));
    const producer = broker.producer();
    for (const key of [`${root}.a`, `${root}.a.b`, root, `other.a`])
      await producer.publish(topic(key), { type: 'k', data: key });
    await waitFor(() => hash.length === 3);
    await waitFor(() => star.length === 1);
    expect(star).toEqual([`${root}.a`]);
    expect(hash.sort()).toEqual([root, `${root}.a`, `${root}.a.b`].sort());
  });

  it('keeps publish order for one consumer with concurrency 1', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('ordered'));
    const producer = broker.producer();
    for (let i = 0; i < 300; i++) await producer.publish(q, { type: 'n', data: i });
    const got: number[] = [];
    await broker.consumer().subscribe(q, async (m: Message<number>) => {
      if (m.data % 7 === 0) await new Promise((r) => setImmediate(r));
      got.push(m.data);
    });
    await waitFor(() => got.length === 300);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('never runs more handlers than `concurrency`', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('limited'));
    let running = 0;
    let peak = 0;
    let done = 0;
    await broker.consumer().subscribe(
      q,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        done++;
      },
      { concurrency: 3 },
    );
    const producer = broker.producer();
    await Promise.all(Array.from({ length: 30 }, (_, i) => producer.publish(q, { type: 'n', data: i })));
    await waitFor(() => done === 30);
    expect(peak).toBe(3);
  });

  it('keeps a group queue while its members are away; drops a private subscription queue on close', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const t = topic(uniqueName('events'));
    const consumer = broker.consumer();
    const first = await consumer.subscribe(t, () => undefined, { group: 'g' });
    const priv = await consumer.subscribe(t, () => undefined);
    const before = memoryHub(hub).queueNames();
    expect(before).toContain(`~${t.name}#g`);
    expect(before.filter((n) => n.startsWith(`~${t.name}~`))).toHaveLength(1);
    await first.close();
    await priv.close();
    expect(
      memoryHub(hub)
        .queueNames()
        .filter((n) => n.startsWith(`~${t.name}~`)),
    ).toHaveLength(0);
    await broker.producer().publish(t, { type: 'e', data: 'while away' });
    const got: unknown[] = [];
    await consumer.subscribe(t, (m) => void got.push(m.data), { group: 'g' });
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['while away']);
  });

  it('isolates named hubs: memory://a and memory://b share nothing', async () => {
    const a = await open(uniqueName('a'));
    const b = await open(uniqueName('b'));
    const q = queue(uniqueName('q'));
    const got: unknown[] = [];
    await b.consumer().subscribe(q, (m) => void got.push(m.data));
    await a.producer().publish(q, { type: 'x', data: 1 });
    await b.producer().publish(q, { type: 'x', data: 2 });
    await waitFor(() => got.length === 1);
    expect(got).toEqual([2]);
  });

  it('rejects a mandatory topic publish nobody receives; a plain fan-out to nobody is fine', async () => {
    const broker = await open(uniqueName('hub'));
    const producer = broker.producer();
    const name = uniqueName('nobody');
    await expect(producer.publish(topic(name), { type: 'x', data: 1 })).resolves.toBeUndefined();
    await expect(producer.publish(topic(name, { mandatory: true }), { type: 'x', data: 1 })).rejects.toMatchObject({
      name: 'PublishError',
      code: ErrorCode.UNROUTABLE,
    });
  });

  it('bounds queues: a publish past maxQueueLength fails with FERRY_OVERFLOW and nothing is stored', async () => {
    const hub = uniqueName('hub');
    const broker = await connectTo(`${hub}?maxQueueLength=3`);
    const q = queue(uniqueName('small'));
    const producer = broker.producer();
    for (let i = 0; i < 3; i++) await producer.publish(q, { type: 'n', data: i });
    await expect(producer.publish(q, { type: 'n', data: 3 })).rejects.toMatchObject({ code: ErrorCode.OVERFLOW });
    expect(memoryHub(hub).stats(q.name)?.ready).toBe(3);
  });

  it('refuses publishing to a pattern and groups on queues, with typed errors', async () => {
    const broker = await open(uniqueName('hub'));
    await expect(broker.producer().publish(topic('a.*'), { type: 'x', data: 1 })).rejects.toMatchObject({
      name: 'ConfigurationError',
      code: ErrorCode.INVALID_DESTINATION,
    });
    await expect(broker.consumer().subscribe(queue('q'), () => undefined, { group: 'g' })).rejects.toMatchObject({
      name: 'ConfigurationError',
    });
    await expect(broker.consumer().subscribe(topic('a'), () => undefined, { group: 'bad.name' })).rejects.toMatchObject(
      {
        code: ErrorCode.INVALID_DESTINATION,
      },
    );
    await expect(broker.consumer().subscribe(queue('q'), () => undefined, { concurrency: 0 })).rejects.toMatchObject({
      code: ErrorCode.CONFIGURATION,
    });
    await expect(broker.consumer().subscribe(queue('x'.repeat(252)), () => undefined)).rejects.toMatchObject({
      code: ErrorCode.INVALID_DESTINATION,
      message: expect.stringContaining('dead-letter') as string,
    });
    await expect(broker.producer().publish(queue('q'), { type: '', data: 1 })).rejects.toMatchObject({
      code: ErrorCode.CONFIGURATION,
    });
  });

  it('refuses reserved and invalid headers on publish, sending nothing', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const producer = broker.producer();
    for (const headers of [
      { 'ce-id': 'spoof' },
      { 'ferry-attempt': '5' },
      { 'Ferry-Attempt': '5' },
      { 'content-length': '1' },
    ]) {
      await expect(producer.publish(q, { type: 'x', data: 1, headers })).rejects.toMatchObject({
        code: ErrorCode.RESERVED_HEADER,
      });
    }
    await expect(
      producer.publish(q, { type: 'x', data: 1, headers: { ok: 1 as unknown as string } }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_HEADER });
    expect(memoryHub(hub).stats(q.name)).toBeUndefined();
  });

  it('lets a publish middleware add headers and a consume middleware see them, in onion order', async () => {
    const order: string[] = [];
    const broker = await connectTo(uniqueName('hub'), {
      middleware: {
        publish: [
          async (ctx, next) => {
            order.push('broker-publish');
            ctx.headers['x-tenant'] = 'acme';
            await next();
          },
        ],
      },
    });
    const q = queue(uniqueName('q'));
    const done = deferred<Message>();
    const consumer = broker.consumer({
      middleware: [
        async (ctx, next) => {
          order.push(`consume-outer:${ctx.message.headers['x-tenant']}`);
          await next();
          order.push('consume-outer-after');
        },
        async (_ctx, next) => {
          order.push('consume-inner');
          await next();
        },
      ],
    });
    await consumer.subscribe(q, (m) => {
      order.push('handler');
      done.resolve(m);
    });
    const producer = broker.producer({
      middleware: [
        async (_ctx, next) => {
          order.push('producer-publish');
          await next();
        },
      ],
    });
    await producer.publish(q, { type: 'x', data: 1 });
    const m = await done.promise;
    await waitFor(() => order.includes('consume-outer-after'));
    expect(m.headers['x-tenant']).toBe('acme');
    expect(order).toEqual([
      'broker-publish',
      'producer-publish',
      'consume-outer:acme',
      'consume-inner',
      'handler',
      'consume-outer-after',
    ]);
  });

  it('carries transport hints untouched and lets producer.use / consumer.use add middleware', async () => {
    const broker = await open(uniqueName('hub'));
    const t = topic(uniqueName('hinted'), { example: { exchange: 'user-updated', passive: true } });
    expect(t.options.example).toEqual({ exchange: 'user-updated', passive: true });
    const seen: string[] = [];
    const consumer = broker.consumer().use(async (ctx, next) => {
      seen.push(`consume:${ctx.message.headers['x-added']}`);
      await next();
    });
    await consumer.subscribe(t, () => void seen.push('handler'));
    const producer = broker.producer().use((ctx, next) => {
      ctx.headers['x-added'] = 'by-use';
      return next();
    });
    await producer.publish(t, { type: 'x', data: 1 });
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual(['consume:by-use', 'handler']);
  });
});
