import { describe, expect, it } from 'vitest';
import { BYTES_CONTENT_TYPE, JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE } from './codec.js';
import { queue, topic } from './destination.js';
import {
  SPEC_VERSION,
  applicationHeaders,
  attemptOf,
  contentTypeOf,
  createEnvelope,
  fromPrefixedHeaders,
  originOf,
  toPrefixedHeaders,
} from './envelope.js';
import { ConfigurationError } from './errors.js';
import {
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_TIME,
} from './headers.js';

const body = Uint8Array.of(1, 2, 3);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('createEnvelope', () => {
  it('fills in every CloudEvents attribute', () => {
    const envelope = createEnvelope(
      { type: 'order.placed', data: { id: 1 }, id: 'm-1', time: '2024-05-06T07:08:09.000Z' },
      body,
      JSON_CONTENT_TYPE,
      'orders-service',
      { 'x-correlation-id': 'c-1' },
    );
    expect(envelope).toEqual({
      attributes: {
        id: 'm-1',
        type: 'order.placed',
        source: 'orders-service',
        specversion: '1.0',
        time: '2024-05-06T07:08:09.000Z',
        datacontenttype: JSON_CONTENT_TYPE,
      },
      headers: { 'x-correlation-id': 'c-1' },
      body,
    });
    expect(envelope.body).toBe(body);
    expect(SPEC_VERSION).toBe('1.0');
  });

  it('generates a unique UUID id when none is given', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const { attributes } = createEnvelope({ type: 't', data: null }, body, JSON_CONTENT_TYPE, 's', {});
      expect(attributes.id).toMatch(UUID);
      ids.add(attributes.id);
    }
    expect(ids.size).toBe(100);
  });

  it('refuses an empty id instead of sending a message without a dedup key', () => {
    expect(() => createEnvelope({ type: 't', data: null, id: '' }, body, JSON_CONTENT_TYPE, 's', {})).toThrow(
      ConfigurationError,
    );
  });

  it('writes a Date time as ISO 8601 and keeps a string as given', () => {
    const date = new Date(Date.UTC(2023, 0, 2, 3, 4, 5, 678));
    expect(createEnvelope({ type: 't', data: 1, time: date }, body, JSON_CONTENT_TYPE, 's', {}).attributes.time).toBe(
      '2023-01-02T03:04:05.678Z',
    );
    expect(
      createEnvelope({ type: 't', data: 1, time: '2023-01-02T03:04:05+02:00' }, body, JSON_CONTENT_TYPE, 's', {})
        .attributes.time,
    ).toBe('2023-01-02T03:04:05+02:00');
  });

  it('stamps the current time when none is given', () => {
    const before = Date.now();
    const { time } = createEnvelope({ type: 't', data: 1 }, body, JSON_CONTENT_TYPE, 's', {}).attributes;
    const after = Date.now();
    expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const stamped = Date.parse(time!);
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(after);
  });

  it('refuses an invalid Date with a ConfigurationError, not a bare RangeError', () => {
    expect(() =>
      createEnvelope({ type: 't', data: 1, time: new Date('not a date') }, body, JSON_CONTENT_TYPE, 's', {}),
    ).toThrow(ConfigurationError);
  });

  it('sets subject and partitionkey only when given', () => {
    const bare = createEnvelope({ type: 't', data: 1 }, body, JSON_CONTENT_TYPE, 's', {}).attributes;
    expect(bare).not.toHaveProperty('subject');
    expect(bare).not.toHaveProperty('partitionkey');
    const full = createEnvelope(
      { type: 't', data: 1, subject: 'order/1', key: 'customer-9' },
      body,
      JSON_CONTENT_TYPE,
      's',
      {},
    ).attributes;
    expect(full.subject).toBe('order/1');
    expect(full.partitionkey).toBe('customer-9');
  });
});

describe('contentTypeOf', () => {
  it('uses the named content type, else infers it from the data', () => {
    expect(contentTypeOf({ type: 't', data: { a: 1 }, datacontenttype: 'application/xml' })).toBe('application/xml');
    expect(contentTypeOf({ type: 't', data: { a: 1 } })).toBe(JSON_CONTENT_TYPE);
    expect(contentTypeOf({ type: 't', data: 'hi' })).toBe(TEXT_CONTENT_TYPE);
    expect(contentTypeOf({ type: 't', data: Buffer.from('x') })).toBe(BYTES_CONTENT_TYPE);
  });
});

describe('toPrefixedHeaders / fromPrefixedHeaders', () => {
  const envelope = createEnvelope(
    { type: 'order.placed', data: 1, id: 'm-1', subject: 'o-1', key: 'k-1', time: '2024-01-01T00:00:00.000Z' },
    body,
    JSON_CONTENT_TYPE,
    'svc',
    { traceparent: '00-abc-def-01', 'x-tenant': 'acme', [HEADER_ATTEMPT]: '2' },
  );

  it('flattens attributes into ce- headers next to the envelope headers', () => {
    expect(toPrefixedHeaders(envelope)).toEqual({
      traceparent: '00-abc-def-01',
      'x-tenant': 'acme',
      [HEADER_ATTEMPT]: '2',
      'ce-id': 'm-1',
      'ce-type': 'order.placed',
      'ce-source': 'svc',
      'ce-specversion': '1.0',
      'ce-time': '2024-01-01T00:00:00.000Z',
      'ce-datacontenttype': JSON_CONTENT_TYPE,
      'ce-subject': 'o-1',
      'ce-partitionkey': 'k-1',
    });
  });

  it('omits attributes that are absent', () => {
    const bare = createEnvelope({ type: 't', data: 1 }, body, JSON_CONTENT_TYPE, 's', {});
    const headers = toPrefixedHeaders(bare);
    expect(headers).not.toHaveProperty('ce-subject');
    expect(headers).not.toHaveProperty('ce-partitionkey');
  });

  it('round-trips an envelope', () => {
    const back = fromPrefixedHeaders(toPrefixedHeaders(envelope), envelope.body);
    expect(back).toEqual(envelope);
  });

  it('round-trips with another prefix (e.g. cloudEvents_ on AMQP 1.0)', () => {
    const headers = toPrefixedHeaders(envelope, 'cloudevents_');
    expect(headers['cloudevents_id']).toBe('m-1');
    expect(fromPrefixedHeaders(headers, body, {}, () => false, 'cloudevents_')).toEqual(envelope);
  });

  it('reads ce- headers case-insensitively and keeps other header names as written', () => {
    const back = fromPrefixedHeaders({ 'CE-ID': 'm-9', 'Ce-Type': 'x.y', 'X-Trace': 't' }, body);
    expect(back.attributes.id).toBe('m-9');
    expect(back.attributes.type).toBe('x.y');
    expect(back.headers).toEqual({ 'X-Trace': 't' });
  });

  it('drops control headers via isControl, handing it lower-case names', () => {
    const seen: string[] = [];
    const back = fromPrefixedHeaders(
      {
        ...toPrefixedHeaders(envelope),
        'Content-Length': '3',
        destination: '/queue/orders',
        'message-id': 'broker-1',
        'x-mqtt-qos': '1',
      },
      body,
      {},
      (name) => {
        seen.push(name);
        return ['content-length', 'destination', 'message-id'].includes(name) || name.startsWith('x-mqtt-');
      },
    );
    expect(back.headers).toEqual(envelope.headers);
    expect(seen).toContain('content-length');
    expect(seen).not.toContain('ce-id');
  });

  it('synthesizes an envelope for a plain client message without ce- headers', () => {
    const back = fromPrefixedHeaders({ 'x-app': '1' }, body, {
      id: 'broker-id-7',
      type: 'legacy.event',
      source: 'amqp://host/orders',
      contentType: 'text/plain',
    });
    expect(back.attributes).toEqual({
      id: 'broker-id-7',
      type: 'legacy.event',
      source: 'amqp://host/orders',
      specversion: '1.0',
      datacontenttype: 'text/plain',
    });
    expect(back.headers).toEqual({ 'x-app': '1' });
    expect(back.body).toBe(body);
  });

  it('falls back to a generated id and "unknown" type and source when nothing is known', () => {
    const a = fromPrefixedHeaders({}, body);
    const b = fromPrefixedHeaders({}, body);
    expect(a.attributes.id).toMatch(UUID);
    expect(a.attributes.id).not.toBe(b.attributes.id);
    expect(a.attributes).toMatchObject({ type: 'unknown', source: 'unknown', specversion: '1.0' });
    expect(a.attributes).not.toHaveProperty('datacontenttype');
    expect(a.attributes).not.toHaveProperty('time');
  });

  it('treats empty ce- values as absent and prefers ce- headers over the fallback', () => {
    const fallback = { id: 'fb-id', type: 'fb.type', source: 'fb-src', contentType: 'text/plain' };
    const empty = fromPrefixedHeaders({ 'ce-id': '', 'ce-type': '', 'ce-source': '' }, body, fallback);
    expect(empty.attributes).toMatchObject({ id: 'fb-id', type: 'fb.type', source: 'fb-src' });
    const given = fromPrefixedHeaders(
      { 'ce-id': 'ce-id', 'ce-type': 'ce.type', 'ce-source': 'ce-src', 'ce-datacontenttype': JSON_CONTENT_TYPE },
      body,
      fallback,
    );
    expect(given.attributes).toMatchObject({
      id: 'ce-id',
      type: 'ce.type',
      source: 'ce-src',
      datacontenttype: JSON_CONTENT_TYPE,
    });
    expect(fromPrefixedHeaders({}, body, { id: '' }).attributes.id).toMatch(UUID);
  });

  it('never lets a header named __proto__ change the result prototype', () => {
    const back = fromPrefixedHeaders(JSON.parse('{"__proto__":"x","ce-__proto__":"y","ok":"1"}') as never, body);
    expect(Object.getPrototypeOf(back.headers)).toBe(Object.prototype);
    expect(back.headers['ok']).toBe('1');
  });
});

describe('attemptOf', () => {
  const at = (value: string | undefined, max = 5): number =>
    attemptOf(value === undefined ? {} : { [HEADER_ATTEMPT]: value }, max);

  it('is 1 without a header', () => {
    expect(at(undefined)).toBe(1);
  });

  it.each([
    ['1', 1],
    ['3', 3],
    ['5', 5],
  ])('trusts the in-range value %j', (value, expected) => {
    expect(at(value)).toBe(expected);
  });

  it.each(['0', '-1', '1.5', 'abc', '', '999999999999', '6', ' 2', '2 ', '02', '+2', '2e0', '0x2', 'Infinity', 'NaN'])(
    'counts %j as attempt 1 (max 5)',
    (value) => {
      expect(at(value)).toBe(1);
    },
  );

  it('honours larger maxAttempts', () => {
    expect(at('6', 10)).toBe(6);
    expect(at('100000', 100000)).toBe(100000);
    expect(at('2', 1)).toBe(1);
  });
});

describe('applicationHeaders', () => {
  it('keeps application and dead-letter headers, drops ferry-attempt, ferry-topic, ce-* and control headers', () => {
    const headers = {
      traceparent: '00-a-b-01',
      'x-tenant': 'acme',
      [HEADER_ATTEMPT]: '3',
      'ferry-topic': 'orders.eu',
      [HEADER_DEAD_LETTER_REASON]: 'boom',
      [HEADER_DEAD_LETTER_CODE]: 'FERRY_HANDLER_FAILED',
      [HEADER_DEAD_LETTER_ATTEMPTS]: '5',
      [HEADER_DEAD_LETTER_ORIGIN]: 'queue:orders',
      [HEADER_DEAD_LETTER_TIME]: '2024-01-01T00:00:00.000Z',
      'ce-id': 'm-1',
      'CE-Type': 't',
      'content-length': '3',
      'x-mqtt-qos': '1',
    };
    expect(applicationHeaders(headers)).toEqual({
      traceparent: '00-a-b-01',
      'x-tenant': 'acme',
      [HEADER_DEAD_LETTER_REASON]: 'boom',
      [HEADER_DEAD_LETTER_CODE]: 'FERRY_HANDLER_FAILED',
      [HEADER_DEAD_LETTER_ATTEMPTS]: '5',
      [HEADER_DEAD_LETTER_ORIGIN]: 'queue:orders',
      [HEADER_DEAD_LETTER_TIME]: '2024-01-01T00:00:00.000Z',
    });
  });

  it('returns a new object', () => {
    const headers = { a: '1' };
    const out = applicationHeaders(headers);
    expect(out).toEqual(headers);
    expect(out).not.toBe(headers);
  });
});

describe('originOf', () => {
  it('labels queues and topic subscriptions', () => {
    expect(originOf(queue('orders'))).toBe('queue:orders');
    expect(originOf(topic('orders.*'), 'billing')).toBe('topic:orders.*#billing');
    expect(originOf(topic('orders.#'))).toBe('topic:orders.#');
  });
});

describe('fromPrefixedHeaders with CloudEvents extensions', () => {
  it('passes ce- extension attributes of other producers on as plain headers', () => {
    const envelope = fromPrefixedHeaders(
      { 'ce-id': 'e-1', 'ce-type': 't', 'ce-traceparent': '00-abc-def-01', 'ce-tenant': 'acme', tenant: 'own' },
      new Uint8Array(0),
    );
    expect(envelope.attributes).toMatchObject({ id: 'e-1', type: 't' });
    expect(envelope.headers).toEqual({ traceparent: '00-abc-def-01', tenant: 'own' });
  });
});
