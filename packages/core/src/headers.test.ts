import { describe, expect, it } from 'vitest';
import { ConfigurationError, ErrorCode } from './errors.js';
import {
  CLOUDEVENTS_HEADER_PREFIX,
  FERRY_HEADER_PREFIX,
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_TIME,
  assertApplicationHeaders,
  isReservedHeader,
} from './headers.js';

function errorOf(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('header constants', () => {
  it('namespaces every Ferry header under ferry-', () => {
    expect(CLOUDEVENTS_HEADER_PREFIX).toBe('ce-');
    expect(FERRY_HEADER_PREFIX).toBe('ferry-');
    for (const name of [
      HEADER_ATTEMPT,
      HEADER_DEAD_LETTER_REASON,
      HEADER_DEAD_LETTER_CODE,
      HEADER_DEAD_LETTER_ATTEMPTS,
      HEADER_DEAD_LETTER_ORIGIN,
      HEADER_DEAD_LETTER_TIME,
    ]) {
      expect(name.startsWith(FERRY_HEADER_PREFIX)).toBe(true);
      expect(isReservedHeader(name)).toBe(true);
    }
  });
});

describe('isReservedHeader', () => {
  it.each([
    'ce-id',
    'ce-type',
    'ce-anything',
    'CE-ID',
    'Ce-Source',
    'ferry-attempt',
    'FERRY-Attempt',
    'ferry-custom',
    'x-mqtt-qos',
    'X-MQTT-Retain',
    'content-length',
    'Content-Length',
    'content-type',
    'content-encoding',
    'destination',
    'message-id',
    'subscription',
    'receipt',
    'receipt-id',
    'ack',
    'transaction',
    'persistent',
    'redelivered',
    'x-death',
    'x-delivery-count',
  ])('reserves %j', (name) => {
    expect(isReservedHeader(name)).toBe(true);
  });

  it.each([
    'traceparent',
    'tracestate',
    'x-correlation-id',
    'x-ferry',
    'my-ce-id',
    'cex',
    'ferry',
    'content',
    'x-mqtt',
  ])('leaves %j to applications', (name) => {
    expect(isReservedHeader(name)).toBe(false);
  });
});

describe('assertApplicationHeaders', () => {
  it('accepts ordinary headers and an empty map', () => {
    expect(() => assertApplicationHeaders({})).not.toThrow();
    expect(() =>
      assertApplicationHeaders({ traceparent: '00-a-b-01', 'x-correlation-id': 'c-1', X_Upper: 'v' }),
    ).not.toThrow();
  });

  it('accepts any text as a value: colons, newlines, backslashes, non-ASCII, empty', () => {
    expect(() =>
      assertApplicationHeaders({
        'x-colon': 'a:b:c',
        'x-newline': 'line1\nline2\r\n',
        'x-backslash': 'C:\\path\\to',
        'x-unicode': 'Zoë 東京 🚢',
        'x-empty': '',
      }),
    ).not.toThrow();
  });

  it('accepts non-ASCII names and names of 255 characters', () => {
    expect(() => assertApplicationHeaders({ 'x-größe': '1', ['x'.repeat(255)]: 'v' })).not.toThrow();
  });

  it.each(['ce-id', 'CE-Type', 'ferry-attempt', 'Ferry-Dead-Letter-Reason', 'x-mqtt-qos', 'content-length'])(
    'refuses the reserved name %j with FERRY_RESERVED_HEADER',
    (name) => {
      const error = errorOf(() => assertApplicationHeaders({ [name]: 'v' }));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: ErrorCode.RESERVED_HEADER });
      expect((error as Error).message).toContain(name);
    },
  );

  it('suggests an x- name in place of a reserved prefix', () => {
    expect((errorOf(() => assertApplicationHeaders({ 'ferry-tenant': 'v' })) as Error).message).toContain('"x-tenant"');
  });

  it.each([
    ['empty', ''],
    ['with a colon', 'x:y'],
    ['with a space', 'x y'],
    ['with a newline', 'x\ny'],
    ['with a carriage return', 'x\ry'],
    ['with a tab', 'x\ty'],
    ['with a NUL', 'x\u0000y'],
    ['with DEL', 'x\u007fy'],
    ['longer than 255 characters', 'x'.repeat(256)],
  ])('refuses a name %s with FERRY_INVALID_HEADER', (_label, name) => {
    const error = errorOf(() => assertApplicationHeaders({ [name]: 'v' }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_HEADER });
  });

  it.each([
    ['a number', 1],
    ['a boolean', true],
    ['null', null],
    ['undefined', undefined],
    ['an object', { a: 1 }],
    ['an array', ['a']],
    ['a Buffer', Buffer.from('x')],
  ])('refuses %s as a value with FERRY_INVALID_HEADER', (_label, value) => {
    const error = errorOf(() => assertApplicationHeaders({ 'x-ok': 'fine', 'x-bad': value }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_HEADER });
    expect((error as Error).message).toContain('x-bad');
  });
});
