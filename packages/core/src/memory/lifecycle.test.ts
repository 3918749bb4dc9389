import { describe, expect, it } from 'vitest';
import { deferred, uniqueName, waitFor, memoryBrokers } from '../../test/helpers.js';
import type { Broker } from '../broker.js';
import { queue } from '../destination.js';
import { ErrorCode, type FerryError } from '../errors.js';
import type { Message } from '../message.js';
import { idempotency, MemoryIdempotencyStore } from '../middleware/idempotency.js';
import { memoryHub } from './hub.js';

const connectTo = memoryBrokers();
const open = (hub: string, publishTimeout?: number): Promise<Broker> =>
  connectTo(hub, publishTimeout === undefined ? {} : { publishTimeout });

describe('memory transport: close, redelivery and outages', () => {
  it('close() finishes the in-flight handler before acking, then rejects everything with ClosedError; twice is fine', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const started = deferred();
    const release = deferred();
    let finished = false;
    const consumer = broker.consumer();
    await consumer.subscribe(q, async () => {
      started.resolve();
      await release.promise;
      finished = true;
    });
    const producer = broker.producer();
    await producer.publish(q, { type: 'x', data: 1 });
    await started.promise;
    let closed = false;
    const closing = broker.close().then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    release.resolve();
    await closing;
    expect(finished).toBe(true);
    expect(memoryHub(hub).stats(q.name)).toMatchObject({ ready: 0, unacked: 0 });
    await expect(broker.close()).resolves.toBeUndefined();
    await expect(producer.publish(q, { type: 'x', data: 2 })).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    await expect(consumer.subscribe(q, () => undefined)).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(() => broker.producer()).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }));
    expect(broker.health().status).toBe('down');
  });

  it('aborts message.signal on close; a handler that gives up hands the message back, redelivered, without using an attempt', async () => {
    const hub = uniqueName('hub');
    const first = await open(hub);
    const q = queue(uniqueName('q'));
    const started = deferred();
    await first.consumer().subscribe(q, async (m) => {
      started.resolve();
      await new Promise<void>((_, reject) =>
        m.signal.addEventListener('abort', () => reject(m.signal.reason as Error)),
      );
    });
    await first.producer().publish(q, { type: 'x', data: 'keep me' });
    await started.promise;
    await first.consumer().close();
    await first.close();
    const second = await open(hub);
    const got: Message[] = [];
    await second.consumer().subscribe(q, (m) => void got.push(m));
    await waitFor(() => got.length === 1);
    expect(got[0]).toMatchObject({ data: 'keep me', redelivered: true, attempt: 1 });
  });

  it('producer.close() waits for pending publishes', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const producer = broker.producer();
    const pending = Array.from({ length: 50 }, (_, i) => producer.publish(q, { type: 'x', data: i }));
    await producer.close();
    expect(memoryHub(hub).stats(q.name)?.ready).toBe(50);
    await expect(Promise.all(pending)).resolves.toHaveLength(50);
  });

  it('redelivers unacked messages flagged redelivered when connections drop, and reports the outage', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const events: string[] = [];
    broker.on('disconnected', (e: FerryError) => events.push(`disconnected:${e.code}`));
    broker.on('reconnecting', () => events.push('reconnecting'));
    broker.on('connected', () => events.push('connected'));
    const q = queue(uniqueName('q'));
    const deliveries: Message[] = [];
    const hold = deferred();
    await broker.consumer().subscribe(q, async (m) => {
      deliveries.push(m);
      if (deliveries.length === 1) await hold.promise;
    });
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await waitFor(() => deliveries.length === 1);
    memoryHub(hub).dropConnections(20);
    expect(broker.health().status).toBe('reconnecting');
    await waitFor(() => deliveries.length === 2);
    expect(deliveries[1]).toMatchObject({ id: deliveries[0]!.id, redelivered: true });
    expect(events).toEqual([`disconnected:${ErrorCode.CONNECTION}`, 'reconnecting', 'connected']);
    expect(broker.health().status).toBe('up');
    expect(broker.health().lastError?.code).toBe(ErrorCode.CONNECTION);
    hold.resolve();
  });

  it('with the idempotency middleware, a redelivered duplicate does not run the handler twice', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    let calls = 0;
    const hold = deferred();
    const started = deferred();
    await broker.consumer({ middleware: [idempotency()] }).subscribe(
      q,
      async () => {
        calls++;
        started.resolve();
        await hold.promise;
      },
      { concurrency: 2 },
    );
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await started.promise;
    memoryHub(hub).dropConnections(10);
    await waitFor(() => broker.health().status === 'up');
    hold.resolve();
    await waitFor(() => memoryHub(hub).stats(q.name)?.ready === 0 && memoryHub(hub).stats(q.name)?.unacked === 0);
    expect(calls).toBe(1);
  });

  it('holds publishes during an outage and sends them after reconnecting; fails them with FERRY_PUBLISH_TIMEOUT past publishTimeout', async () => {
    const hub = uniqueName('hub');
    const patient = await open(hub);
    const hasty = await open(hub, 20);
    const q = queue(uniqueName('q'));
    memoryHub(hub).dropConnections(150);
    const waiting = patient.producer().publish(q, { type: 'x', data: 'later' });
    await expect(hasty.producer().publish(q, { type: 'x', data: 'never' })).rejects.toMatchObject({
      name: 'PublishError',
      code: ErrorCode.PUBLISH_TIMEOUT,
    });
    await waiting;
    const got: unknown[] = [];
    await patient.consumer().subscribe(q, (m) => void got.push(m.data));
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['later']);
  });

  it('a closed subscription stops receiving while others on the consumer go on', async () => {
    const broker = await open(uniqueName('hub'));
    const [a, b] = [queue(uniqueName('a')), queue(uniqueName('b'))];
    const got: string[] = [];
    const consumer = broker.consumer();
    const subA = await consumer.subscribe(a, () => void got.push('a'));
    await consumer.subscribe(b, () => void got.push('b'));
    await subA.close();
    await subA.close();
    const producer = broker.producer();
    await producer.publish(a, { type: 'x', data: 1 });
    await producer.publish(b, { type: 'x', data: 1 });
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['b']);
  });

  it('bounds publishes waiting through an outage: past maxPendingPublishes a publish fails at once with FERRY_OVERFLOW', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    const producer = broker.producer({ maxPendingPublishes: 2 });
    memoryHub(hub).dropConnections(100);
    const waiting = [producer.publish(q, { type: 'x', data: 1 }), producer.publish(q, { type: 'x', data: 2 })];
    await expect(producer.publish(q, { type: 'x', data: 3 })).rejects.toMatchObject({ code: ErrorCode.OVERFLOW });
    await Promise.all(waiting);
    expect(memoryHub(hub).stats(q.name)?.ready).toBe(2);
  });

  it('with a shared idempotency store, a copy redelivered while a dead holder keeps its claim is retried, not lost', async () => {
    const hub = uniqueName('hub');
    const store = new MemoryIdempotencyStore();
    const broker = await open(hub);
    const q = queue(uniqueName('q'));
    let attempts = 0;
    let completed = 0;
    const stuck = deferred();
    const consumer = broker.consumer({ middleware: [idempotency({ store, claimTtlMs: 100 })], closeTimeoutMs: 50 });
    await consumer.subscribe(
      q,
      async () => {
        attempts++;
        if (attempts === 1) {
          stuck.resolve();
          await new Promise(() => undefined); // the holder hangs forever, as a crashed process would
        }
        completed++;
      },
      { concurrency: 2, retry: { maxAttempts: 20, initialDelayMs: 20, maxDelayMs: 40 } },
    );
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await stuck.promise;
    memoryHub(hub).dropConnections(5);
    await waitFor(() => completed === 1, 5_000, 'the redelivered copy to be handled after the claim expired');
    expect(attempts).toBe(2);
    expect(memoryHub(hub).stats(`${q.name}.dlq`)).toBeUndefined();
  });

  it('runs many handlers at once without piling listeners on shared signals (no MaxListenersExceededWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const broker = await open(uniqueName('hub'));
      const q = queue(uniqueName('wide'));
      let done = 0;
      await broker.consumer().subscribe(
        q,
        async (m) => {
          expect(m.signal.aborted).toBe(false);
          await new Promise((r) => setTimeout(r, 2));
          done++;
        },
        { concurrency: 64 },
      );
      const producer = broker.producer({ publishTimeout: 5_000 });
      await Promise.all(Array.from({ length: 500 }, (_, i) => producer.publish(q, { type: 'x', data: i })));
      await waitFor(() => done === 500);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
