import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { uniqueName, waitFor, memoryBrokers } from '../../test/helpers.js';
import type { Broker } from '../broker.js';
import type { Codec } from '../codec.js';
import { queue, topic } from '../destination.js';
import { ErrorCode, PermanentError } from '../errors.js';
import { defineEvent } from '../event.js';
import {
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
} from '../headers.js';
import type { Message } from '../message.js';
import { memoryHub } from './hub.js';

const open = memoryBrokers();

const fast = { initialDelayMs: 5, maxDelayMs: 20 };

/** Collects what lands in a dead-letter queue (raw bytes, so nothing is decoded twice). */
async function watchDeadLetters(broker: Broker, name: string): Promise<Message<Buffer>[]> {
  const dead: Message<Buffer>[] = [];
  await broker.consumer().subscribe(queue(name), (m: Message<Buffer>) => void dead.push(m), { decode: false });
  return dead;
}

describe('memory transport: retry, dead letter and poison messages', () => {
  it('retries with the attempt count, then succeeds', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('flaky'));
    const attempts: number[] = [];
    await broker.consumer().subscribe(
      q,
      (m) => {
        attempts.push(m.attempt);
        if (m.attempt < 3) throw new Error('not yet');
      },
      { retry: { maxAttempts: 5, ...fast } },
    );
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await waitFor(() => attempts.length === 3);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('dead-letters after maxAttempts with the original data, headers, error, attempts and origin', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('failing'));
    let calls = 0;
    await broker.consumer().subscribe(
      q,
      () => {
        calls++;
        throw new Error('database is down');
      },
      { retry: { maxAttempts: 3, ...fast } },
    );
    const dead = await watchDeadLetters(broker, `${q.name}.dlq`);
    await broker.producer().publish(q, { type: 'x', id: 'm-1', data: { a: 1 }, headers: { 'x-trace': 't1' } });
    await waitFor(() => dead.length === 1);
    expect(calls).toBe(3);
    const d = dead[0]!;
    expect(d.id).toBe('m-1');
    expect(JSON.parse(d.data.toString('utf8'))).toEqual({ a: 1 });
    expect(d.headers).toMatchObject({
      'x-trace': 't1',
      [HEADER_DEAD_LETTER_REASON]: 'database is down',
      [HEADER_DEAD_LETTER_CODE]: ErrorCode.HANDLER_FAILED,
      [HEADER_DEAD_LETTER_ATTEMPTS]: '3',
      [HEADER_DEAD_LETTER_ORIGIN]: `queue:${q.name}`,
    });
    expect(d.headers[HEADER_ATTEMPT]).toBeUndefined();
    await waitFor(() => memoryHub(hub).stats(q.name)?.unacked === 0);
    expect(memoryHub(hub).stats(q.name)).toMatchObject({ ready: 0, unacked: 0 });
  });

  it('skips retries for a PermanentError', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('permanent'));
    let calls = 0;
    await broker.consumer().subscribe(q, () => {
      calls++;
      throw new PermanentError('order does not exist');
    });
    const dead = await watchDeadLetters(broker, `${q.name}.dlq`);
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await waitFor(() => dead.length === 1);
    expect(calls).toBe(1);
    expect(dead[0]!.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.PERMANENT);
  });

  it('retries only the failing group, through its own queue, and dead-letters to <topic>.<group>.dlq', async () => {
    const broker = await open(uniqueName('hub'));
    const t = topic(uniqueName('evt'));
    const ok: number[] = [];
    let failing = 0;
    const consumer = broker.consumer();
    await consumer.subscribe(t, (m) => void ok.push(m.attempt), { group: 'happy' });
    await consumer.subscribe(
      t,
      () => {
        failing++;
        throw new Error('nope');
      },
      { group: 'sad', retry: { maxAttempts: 2, ...fast } },
    );
    const dead = await watchDeadLetters(broker, `${t.name}.sad.dlq`);
    const privateDead = await watchDeadLetters(broker, `${t.name}.dlq`);
    await consumer.subscribe(t, () => {
      throw new PermanentError('private fails');
    });
    await broker.producer().publish(t, { type: 'x', data: 1 });
    await waitFor(() => dead.length === 1 && privateDead.length === 1);
    expect(failing).toBe(2);
    expect(ok).toEqual([1]);
    expect(dead[0]!.headers[HEADER_DEAD_LETTER_ORIGIN]).toBe(`topic:${t.name}#sad`);
    expect(privateDead[0]!.headers[HEADER_DEAD_LETTER_ORIGIN]).toBe(`topic:${t.name}`);
  });

  it('dead-letters undecodable and hostile bodies without calling the handler; later messages keep flowing', async () => {
    const hub = uniqueName('hub');
    // A foreign publisher whose "JSON" codec sends raw bytes as they are.
    const raw: Codec = { contentType: 'application/json', encode: (d) => d as Uint8Array, decode: (b) => b };
    const sender = await open(hub, { codecs: [raw] });
    const receiver = await open(hub);
    const q = queue(uniqueName('poison'));
    const handled: unknown[] = [];
    await receiver.consumer().subscribe(q, (m) => void handled.push(m.data));
    const dead = await watchDeadLetters(receiver, `${q.name}.dlq`);
    const bodies = [
      '{"broken": ',
      '{"__proto__": {"polluted": true}}',
      '{"constructor": {"prototype": {"polluted": true}}}',
      '['.repeat(5000) + ']'.repeat(5000),
      '\u00ff\u00fe',
    ];
    for (const body of bodies) {
      const bytes = body === '\u00ff\u00fe' ? Buffer.from([0xff, 0xfe]) : Buffer.from(body);
      await sender.producer().publish(q, { type: 'x', data: bytes, datacontenttype: 'application/json' });
    }
    await sender
      .producer()
      .publish(q, { type: 'x', data: Buffer.from('{"fine":true}'), datacontenttype: 'application/json' });
    await waitFor(() => dead.length === bodies.length && handled.length === 1);
    expect(handled).toEqual([{ fine: true }]);
    expect(dead.map((d) => d.headers[HEADER_DEAD_LETTER_CODE])).toEqual(bodies.map(() => ErrorCode.DECODE));
    expect(dead[1]!.data.toString()).toBe(bodies[1]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('validates on receipt with an event contract: wrong type or invalid data → dead letter; valid data typed and transformed', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const OrderPlaced = defineEvent(
      'order.placed',
      z.object({ orderId: z.string(), total: z.number().positive(), currency: z.string().default('EUR') }),
    );
    const q = queue(uniqueName('orders'));
    const got: { orderId: string; total: number; currency: string }[] = [];
    await broker.consumer().subscribe(q, OrderPlaced, (m) => void got.push(m.data));
    const dead = await watchDeadLetters(broker, `${q.name}.dlq`);
    const producer = broker.producer();
    await producer.publish(q, { type: 'order.placed', data: { orderId: 'o-1', total: -3 } });
    await producer.publish(q, { type: 'order.cancelled', data: { orderId: 'o-2', total: 3 } });
    await producer.publish(q, OrderPlaced.create({ orderId: 'o-3', total: 9 }));
    await waitFor(() => dead.length === 2 && got.length === 1);
    expect(got).toEqual([{ orderId: 'o-3', total: 9, currency: 'EUR' }]);
    expect(dead.map((d) => d.headers[HEADER_DEAD_LETTER_CODE])).toEqual([ErrorCode.VALIDATION, ErrorCode.VALIDATION]);
    expect(dead[0]!.headers[HEADER_DEAD_LETTER_REASON]).toMatch(/total/);
    expect(dead[1]!.headers[HEADER_DEAD_LETTER_REASON]).toMatch(/order\.cancelled/);
  });

  it('validates before sending: an invalid contract message is a ValidationError and nothing is sent', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const Ping = defineEvent('ping', z.object({ n: z.number() }));
    const q = queue(uniqueName('q'));
    const bad = Ping.create({ n: 'one' as unknown as number });
    await expect(broker.producer().publish(q, bad)).rejects.toMatchObject({
      name: 'ValidationError',
      code: ErrorCode.VALIDATION,
      issues: [expect.objectContaining({ path: ['n'] })],
    });
    expect(memoryHub(hub).stats(q.name)).toBeUndefined();
  });

  it('treats a spoofed or garbage attempt header as attempt 1 and trusts in-range values', async () => {
    const hub = uniqueName('hub');
    const broker = await open(hub);
    const q = queue(uniqueName('spoof'));
    const seen: [string, number][] = [];
    await broker.consumer().subscribe(
      q,
      (m) => {
        seen.push([m.data as string, m.attempt]);
        throw new Error('fail');
      },
      { retry: { maxAttempts: 5, ...fast } },
    );
    const dead = await watchDeadLetters(broker, `${q.name}.dlq`);
    for (const [label, value] of [
      ['huge', '999999'],
      ['garbage', 'abc'],
      ['zero', '0'],
      ['last', '5'],
    ] as const) {
      memoryHub(hub).publish(
        q,
        {
          attributes: { id: label, type: 'x', source: 'spoofer', specversion: '1.0', datacontenttype: 'text/plain' },
          headers: { [HEADER_ATTEMPT]: value },
          body: Buffer.from(label),
        },
        false,
        100,
      );
    }
    await waitFor(() => dead.length === 4, 10_000);
    const firstAttempt = (label: string) => seen.find(([l]) => l === label)?.[1];
    expect(firstAttempt('huge')).toBe(1);
    expect(firstAttempt('garbage')).toBe(1);
    expect(firstAttempt('zero')).toBe(1);
    expect(firstAttempt('last')).toBe(5);
    expect(seen.filter(([l]) => l === 'huge')).toHaveLength(5);
    expect(seen.filter(([l]) => l === 'last')).toHaveLength(1);
  });

  it('aborts message.signal at handlerTimeoutMs and counts the attempt as failed', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('slow'));
    const reasons: unknown[] = [];
    const attempts: number[] = [];
    await broker.consumer().subscribe(
      q,
      async (m) => {
        attempts.push(m.attempt);
        if (m.attempt === 1) {
          await new Promise<void>((resolve) => m.signal.addEventListener('abort', () => resolve()));
          reasons.push(m.signal.reason);
        }
      },
      { handlerTimeoutMs: 30, retry: fast },
    );
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await waitFor(() => attempts.length === 2);
    expect(reasons[0]).toMatchObject({ code: ErrorCode.HANDLER_TIMEOUT });
  });

  it('enforces maxMessageBytes on publish (nothing sent) and on receipt (dead letter)', async () => {
    const hub = uniqueName('hub');
    const small = await open(hub, { maxMessageBytes: 2048 });
    const large = await open(hub);
    const q = queue(uniqueName('sizes'));
    await expect(small.producer().publish(q, { type: 'x', data: 'x'.repeat(4096) })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    expect(memoryHub(hub).stats(q.name)).toBeUndefined();
    const handled: unknown[] = [];
    await small.consumer().subscribe(q, (m) => void handled.push(m.data));
    const dead = await watchDeadLetters(large, `${q.name}.dlq`);
    await large.producer().publish(q, { type: 'x', data: 'y'.repeat(4096) });
    await large.producer().publish(q, { type: 'x', data: 'ok' });
    await waitFor(() => dead.length === 1 && handled.length === 1);
    expect(handled).toEqual(['ok']);
    expect(dead[0]!.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(dead[0]!.data.length).toBe(4096);
  });

  it('frees a slot when a handler times out, so work in flight can briefly exceed concurrency (bounded, measured)', async () => {
    const broker = await open(uniqueName('hub'));
    const q = queue(uniqueName('overrun'));
    let running = 0;
    let peak = 0;
    let finished = 0;
    await broker.consumer().subscribe(
      q,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 60)); // ignores message.signal on purpose
        running--;
        finished++;
      },
      { concurrency: 2, handlerTimeoutMs: 20, retry: { maxAttempts: 1 } },
    );
    const producer = broker.producer();
    for (let i = 0; i < 6; i++) await producer.publish(q, { type: 'x', data: i });
    await waitFor(() => finished === 6, 5_000);
    // 2 slots, each freed after 20 ms while its handler runs 60 ms: at most 2 × ceil(60 / 20) = 6 overlap.
    expect(peak).toBeGreaterThan(2);
    expect(peak).toBeLessThanOrEqual(6);
  });

  it('reports retries and dead letters to the logger hook', async () => {
    const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
    const log =
      (level: string) =>
      (fields: Record<string, unknown>, message: string): void =>
        void lines.push({ level, message, fields });
    const broker = await open(uniqueName('hub'), {
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    });
    const q = queue(uniqueName('logged'));
    await broker.consumer().subscribe(
      q,
      () => {
        throw new Error('always');
      },
      { retry: { maxAttempts: 2, ...fast } },
    );
    const dead = await watchDeadLetters(broker, `${q.name}.dlq`);
    await broker.producer().publish(q, { type: 'x', id: 'logged-1', data: 1 });
    await waitFor(() => dead.length === 1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        message: 'handler failed: retry scheduled',
        fields: expect.objectContaining({ id: 'logged-1', attempt: 1 }) as unknown,
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: 'message dead-lettered',
        fields: expect.objectContaining({ id: 'logged-1', attempt: 2, reason: 'always' }) as unknown,
      }),
    );
  });
});
