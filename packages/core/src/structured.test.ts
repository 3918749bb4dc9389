import { describe, expect, it } from 'vitest';
import { createEnvelope } from './envelope.js';
import { ErrorCode } from './errors.js';
import type { Envelope } from './message.js';
import { decodeStructured, encodeStructured, looksStructured, readEnvelope } from './structured.js';

const encoder = new TextEncoder();

function envelope(body: Uint8Array, contentType: string, headers: Record<string, string> = {}): Envelope {
  return createEnvelope(
    { type: 'order.placed', id: 'e-1', subject: 's', key: 'k', time: '2026-01-01T00:00:00.000Z', data: null },
    body,
    contentType,
    'svc',
    headers,
  );
}

describe('structured content mode (CloudEvents JSON format)', () => {
  it.each([
    ['JSON', encoder.encode('{"a":[1,"é"],"b":null}'), 'application/json'],
    ['text', encoder.encode('Grüße 🚢'), 'text/plain; charset=utf-8'],
    ['all 256 byte values', Uint8Array.from({ length: 256 }, (_, i) => i), 'application/octet-stream'],
    ['empty', new Uint8Array(0), 'application/json'],
  ])('round-trips %s bodies with every attribute and header', (_label, body, contentType) => {
    const headers = {
      traceparent: '00-abc-def-01',
      'x-correlation-id': 'c:1\nz',
      'ferry-attempt': '2',
      id: 'not-the-id',
    };
    const original = envelope(body, contentType, headers);
    const encoded = encodeStructured(original);
    expect(looksStructured(encoded)).toBe(true);
    const doc = JSON.parse(new TextDecoder().decode(encoded)) as Record<string, unknown>;
    expect(doc).toMatchObject({ specversion: '1.0', id: 'e-1', type: 'order.placed', traceparent: '00-abc-def-01' });
    const decoded = decodeStructured(encoded);
    expect(decoded.attributes).toEqual(original.attributes);
    expect(decoded.headers).toEqual(headers);
    expect(Buffer.from(decoded.body).equals(Buffer.from(body))).toBe(true);
  });

  it('reads a foreign CloudEvent: JSON data without datacontenttype, string extensions as headers', () => {
    const foreign = encoder.encode(
      JSON.stringify({ specversion: '1.0', id: 'x', type: 't', source: '/s', data: 'hello', tenant: 'acme', n: 3 }),
    );
    const decoded = decodeStructured(foreign);
    expect(decoded.attributes.datacontenttype).toBe('application/json');
    expect(new TextDecoder().decode(decoded.body)).toBe('"hello"');
    expect(decoded.headers).toEqual({ tenant: 'acme' });
  });

  it.each([
    ['not JSON', '{"specversion": '],
    ['hostile', '{"specversion":"1.0","id":"x","type":"t","__proto__":{"p":1}}'],
    ['not an object', '["specversion"]'],
    ['no id', '{"specversion":"1.0","type":"t"}'],
    ['too deep', `{"specversion":"1.0","id":"x","type":"t","data":${'['.repeat(100)}${']'.repeat(100)}}`],
  ])('refuses %s with a DecodeError', (_label, text) => {
    expect(() => decodeStructured(encoder.encode(text))).toThrow(expect.objectContaining({ code: ErrorCode.DECODE }));
  });

  it('refuses to embed a body declared JSON that is not JSON', () => {
    expect(() => encodeStructured(envelope(encoder.encode('{oops'), 'application/json'))).toThrow();
  });

  it('tells plain payloads from structured documents', () => {
    expect(looksStructured(encoder.encode('hello world, this is plain text'))).toBe(false);
    expect(looksStructured(encoder.encode('{"orderId":"o-1","total":12,"currency":"EUR"}'))).toBe(false);
  });
});

describe('readEnvelope: how every transport reads a received message', () => {
  const noControl = (): boolean => false;
  const doc = encoder.encode(JSON.stringify({ specversion: '1.0', id: 'd-1', type: 't.doc', data: { a: 1 } }));
  const broken = encoder.encode('{"specversion":"1.0","type":"no.id"}');

  it('binary mode: ce-* headers win, even over a body that looks like a document', () => {
    const read = readEnvelope({
      headers: { 'ce-id': 'h-1', 'ce-type': 't.h', 'ce-source': '/s', tenant: 'x' },
      body: doc,
      fallback: { contentType: 'application/cloudevents+json' },
      isControl: noControl,
    });
    expect(read.error).toBeUndefined();
    expect(read.envelope.attributes).toMatchObject({ id: 'h-1', type: 't.h' });
    expect(read.envelope.headers).toEqual({ tenant: 'x' });
  });

  it('a declared CloudEvents JSON body is decoded; a broken one comes back with a DecodeError', () => {
    const fallback = { contentType: 'application/cloudevents+json; charset=utf-8' };
    expect(readEnvelope({ headers: {}, body: doc, fallback, isControl: noControl }).envelope.attributes.id).toBe('d-1');
    const bad = readEnvelope({ headers: {}, body: broken, fallback, isControl: noControl });
    expect(bad.error).toMatchObject({ code: ErrorCode.DECODE });
    expect(bad.envelope.body).toBe(broken);
  });

  it('without a content type, a document is read as one; a look-alike that does not decode is data, or an error where asked', () => {
    expect(readEnvelope({ headers: {}, body: doc, fallback: {}, isControl: noControl }).envelope.attributes.id).toBe(
      'd-1',
    );
    const asData = readEnvelope({ headers: {}, body: broken, fallback: { type: 'unknown' }, isControl: noControl });
    expect(asData.error).toBeUndefined();
    expect(asData.envelope.attributes.type).toBe('unknown');
    const asError = readEnvelope({
      headers: {},
      body: broken,
      fallback: {},
      isControl: noControl,
      undecodableDocument: 'error',
    });
    expect(asError.error).toMatchObject({ code: ErrorCode.DECODE });
  });

  it('a plain body with a content type is data, with a synthesized envelope', () => {
    const read = readEnvelope({
      headers: { 'x-broker': '1', app: 'v' },
      body: encoder.encode('hello'),
      fallback: { contentType: 'text/plain', source: 'mqtt://h/t' },
      isControl: (name) => name.startsWith('x-'),
    });
    expect(read.envelope.attributes).toMatchObject({
      type: 'unknown',
      source: 'mqtt://h/t',
      datacontenttype: 'text/plain',
    });
    expect(read.envelope.headers).toEqual({ app: 'v' });
  });
});
