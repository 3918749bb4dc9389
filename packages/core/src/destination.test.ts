import { describe, expect, it } from 'vitest';
import { deadLetterQueueName, queue, topic, topicMatches } from './destination.js';
import { ErrorCode, FerryError } from './errors.js';

describe('destinations', () => {
  it('makes frozen queues and topics', () => {
    const q = queue('orders');
    expect(q).toEqual({ kind: 'queue', name: 'orders', options: {} });
    expect(Object.isFrozen(q)).toBe(true);
    expect(topic('orders.created').isPattern).toBe(false);
    expect(topic('orders.*').isPattern).toBe(true);
    expect(topic('orders.#').isPattern).toBe(true);
  });

  it.each(['', 'a b', '$sys', 'x+y', 'a/b', 'x'.repeat(256)])('rejects queue name %j', (name) => {
    expect(() => queue(name)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_DESTINATION }));
  });

  it.each(['a..b', '.a', 'a.', 'a.b*', 'a+.b', 'a/b', '#x'])('rejects topic name %j', (name) => {
    expect(() => topic(name)).toThrow(FerryError);
  });

  it.each([
    ['a.b', 'a.b', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.*', 'a', false],
    ['a.#', 'a', true],
    ['a.#', 'a.b.c', true],
    ['#', 'x.y', true],
    ['#.c', 'a.b.c', true],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.x.y.c', true],
    ['a.#.c', 'a.x.y.d', false],
    ['*.b.#', 'x.b', true],
    ['*.b.#', 'b', false],
  ])('pattern %s vs key %s → %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('names dead-letter queues as DESIGN.md decides', () => {
    expect(deadLetterQueueName(queue('orders'))).toBe('orders.dlq');
    expect(deadLetterQueueName(topic('orders.created'), 'billing')).toBe('orders.created.billing.dlq');
    expect(deadLetterQueueName(topic('orders.created'))).toBe('orders.created.dlq');
    expect(() => queue(deadLetterQueueName(topic('orders.*'), 'g'))).not.toThrow();
  });
});

describe('dead-letter names stay valid', () => {
  it('accepts the longest names: a 200-character topic with a 50-character group', () => {
    const name = deadLetterQueueName(topic('t'.repeat(200)), 'g'.repeat(50));
    expect(name).toHaveLength(255);
    expect(queue(name).name).toBe(name);
  });
});
