import { type Message, type OutgoingMessage } from '@ferry/core';
import { expect } from 'vitest';

export const SOURCE = 'ferry-conformance-producer';
export const TIME = '2026-01-02T03:04:05.678Z';

/** A message with every attribute set, to check each one arrives intact. */
export function fullMessage(n: number): OutgoingMessage<{ n: number; nested: object }> {
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

export function expectIntact(received: Message, sent: OutgoingMessage): void {
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
