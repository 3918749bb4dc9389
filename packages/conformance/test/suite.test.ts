import { connect, deadLetterQueueName, deleteMemoryHub, MEMORY_CAPABILITIES, queue, topic } from '@ferry/core';
import { describe, expect, it } from 'vitest';
import { CASES } from '../src/cases/index.js';
import { RunContext } from '../src/context.js';
import { inParallel, Tally, uniqueName } from '../src/helpers.js';
import { resolveProfile } from '../src/profile.js';
import { skipReason } from '../src/suite.js';
import type { ConformanceCase, ConformanceOptions, CreatedResources } from '../src/types.js';

const base: ConformanceOptions = {
  name: 'unit',
  connect: () => Promise.reject(new Error('unused')),
  capabilities: MEMORY_CAPABILITIES,
  publishRaw: () => Promise.resolve(),
};
const noop: ConformanceCase = { id: 'x', title: 'x', run: () => Promise.resolve() };

describe('skipReason: only capabilities, applicability rules and missing fault hooks rule a case out', () => {
  it('runs a case whose requirements hold', () => {
    expect(skipReason({ ...noop, requires: ['groups'] }, base)).toBeUndefined();
  });

  it('names the false capability and the transport’s reason for it', () => {
    const options = {
      ...base,
      capabilities: { ...MEMORY_CAPABILITIES, groups: false },
      reasons: { groups: 'RabbitMQ’s MQTT plugin has no shared subscriptions' },
    };
    expect(skipReason({ ...noop, requires: ['wildcards', 'groups'] }, options)).toBe(
      'capabilities.groups is false (RabbitMQ’s MQTT plugin has no shared subscriptions)',
    );
    expect(skipReason({ ...noop, requires: ['groups'] }, { ...options, reasons: {} })).toBe(
      'capabilities.groups is false',
    );
  });

  it('names a missing fault hook', () => {
    expect(skipReason({ ...noop, hooks: ['stopBroker'] }, base)).toMatch(/faults\.stopBroker/);
    expect(
      skipReason({ ...noop, hooks: ['stopBroker'] }, { ...base, faults: { stopBroker: () => Promise.resolve() } }),
    ).toBeUndefined();
  });

  it('applies a case’s own rule over capabilities', () => {
    const big: ConformanceCase = { ...noop, skipUnless: (c) => (c.maxMessageBytes < 10 ? 'too small' : undefined) };
    expect(skipReason(big, base)).toBeUndefined();
    expect(skipReason(big, { ...base, capabilities: { ...MEMORY_CAPABILITIES, maxMessageBytes: 1 } })).toBe(
      'too small',
    );
  });

  it('every case has a unique id and a sentence for a title; exclusive cases all need a fault hook', () => {
    const ids = CASES.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const c of CASES) {
      expect(c.title.length, c.id).toBeGreaterThan(20);
      if (c.exclusive === true) expect(c.hooks?.length ?? 0, c.id).toBeGreaterThan(0);
    }
  });
});

describe('profiles', () => {
  it('defaults to short, reads FERRY_CONFORMANCE and FERRY_CONFORMANCE_COPIES, refuses unknown names', () => {
    expect(resolveProfile(undefined, {})).toEqual({ name: 'short', full: false, timeoutFactor: 1, copies: 1 });
    expect(resolveProfile(undefined, { FERRY_CONFORMANCE: 'full' })).toMatchObject({ full: true, copies: 1 });
    expect(resolveProfile(undefined, { FERRY_CONFORMANCE: 'stress', FERRY_CONFORMANCE_COPIES: '3' })).toEqual({
      name: 'stress',
      full: false,
      timeoutFactor: 5,
      copies: 3,
    });
    expect(() => resolveProfile('huge', {})).toThrow(/short, full or stress/);
    expect(() => resolveProfile('stress', { FERRY_CONFORMANCE_COPIES: '0' })).toThrow(/COPIES/);
  });
});

describe('Tally', () => {
  it('counts duplicates, unflagged duplicates, missing and unexpected ids', () => {
    const tally = new Tally();
    tally.add('a');
    tally.add('b');
    tally.add('a', true);
    tally.add('b');
    expect(tally.distinct).toBe(2);
    expect(tally.deliveries).toBe(4);
    expect(tally.duplicates).toBe(2);
    expect(tally.unflaggedDuplicates).toBe(1);
    expect(tally.hasAll(['a', 'b'])).toBe(true);
    expect(tally.missing(['a', 'c', 'd'])).toEqual(['c', 'd']);
    expect(tally.unexpected(new Set(['a']))).toEqual(['b']);
  });

  it('inParallel never runs more than the given number at once and runs every index once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await inParallel(25, 4, async (i) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      seen.push(i);
      running--;
    });
    expect(most).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });
});

describe('RunContext', () => {
  it('records the queues, dead-letter queues and topic subscriptions a case made, closes its brokers and hands them to cleanup', async () => {
    const hub = uniqueName('ctx');
    let created: CreatedResources | undefined;
    const ctx = new RunContext(
      {
        ...base,
        connect: (options) => connect(`memory://${hub}`, options),
        cleanup: (c) => {
          created = c;
          return Promise.resolve();
        },
      },
      resolveProfile('short', {}),
    );
    const q = ctx.queue('orders');
    const t = ctx.topic(`${ctx.topicBase('events')}.*`);
    const broker = await ctx.connect();
    const consumer = broker.consumer().use((_, next) => next());
    await consumer.subscribe(q, () => undefined);
    await consumer.subscribe(t, () => undefined, { group: 'billing' });
    await consumer.subscribe(t, () => undefined);
    await ctx.dispose();
    expect(broker.health().status).toBe('down');
    expect(created).toEqual({
      queues: expect.arrayContaining([
        q.name,
        `${q.name}.dlq`,
        deadLetterQueueName(t, 'billing'),
        deadLetterQueueName(t),
      ]) as unknown,
      subscriptions: [{ topic: t.name, group: 'billing' }, { topic: t.name }],
    });
    expect(queue(q.name)).toEqual(q);
    expect(topic(t.name)).toEqual(t);
    deleteMemoryHub(hub);
  });
});
