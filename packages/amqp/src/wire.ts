import type { ConsumeMessage, Options } from 'amqplib';
import {
  DecodeError,
  type Destination,
  type Envelope,
  FerryError,
  decodeStructured,
  encodeStructured,
  fromPrefixedHeaders,
  STRUCTURED_CONTENT_TYPE,
  toFerryError,
  toPrefixedHeaders,
} from '@ferry/core';

/** Headers the broker or another protocol adds, never the application's: dropped before the handler sees `headers`. */
const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'x-delivery-count',
  'x-received-from',
  'x-stream-offset',
  'content-length',
  'content-type',
  'receipt',
  'destination',
  'persistent',
  'durable',
  'auto-delete',
  'exclusive',
  'x-queue-name',
  'x-queue-type',
  'message-id',
  'subscription',
  'redelivered',
]);
const CONTROL_PREFIXES = ['x-death', 'x-first-death-', 'x-last-death-', 'x-mqtt-'];

/** True for a header a broker or protocol bridge adds (compared lower-case). */
export function isControlHeader(name: string): boolean {
  return CONTROL_HEADERS.has(name) || CONTROL_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** An AMQP field-table value as text: foreign producers send numbers, booleans, byte arrays, timestamps, tables. */
export function headerText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined) return '';
  try {
    return JSON.stringify(value, (_key, v: unknown) =>
      Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'bigint' ? String(v) : v,
    );
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Whether a destination carries its envelope as a CloudEvents JSON document in the body. */
export function isStructured(destination: Destination): boolean {
  return destination.options.contentMode === 'structured';
}

/** The body and AMQP properties of an outgoing envelope. */
export function toAmqp(
  envelope: Envelope,
  destination: Destination,
  persistent: boolean,
  mandatory: boolean,
): { content: Buffer; options: Options.Publish } {
  const a = envelope.attributes;
  const seconds = a.time === undefined ? Number.NaN : Math.floor(Date.parse(a.time) / 1000);
  const common: Options.Publish = {
    messageId: a.id,
    type: a.type,
    appId: a.source.slice(0, 255),
    persistent,
    mandatory,
    ...(Number.isFinite(seconds) ? { timestamp: seconds } : {}),
  };
  if (isStructured(destination)) {
    return {
      content: Buffer.from(encodeStructured(envelope)),
      options: { ...common, contentType: STRUCTURED_CONTENT_TYPE, headers: {} },
    };
  }
  const body = envelope.body;
  return {
    content: Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    options: {
      ...common,
      ...(a.datacontenttype === undefined ? {} : { contentType: a.datacontenttype }),
      headers: toPrefixedHeaders(envelope),
    },
  };
}

/**
 * The envelope of a delivered message. Ferry's own messages carry `ce-*` headers; a plain AMQP client's
 * message gets one synthesized from its properties (messageId, type, timestamp, contentType, headers);
 * a structured CloudEvents document (`application/cloudevents+json`) is read from the body. When the
 * document is invalid, `error` is set and the envelope holds the raw bytes for the dead letter.
 */
export function fromAmqp(message: ConsumeMessage, fallbackSource: string): { envelope: Envelope; error?: FerryError } {
  const p = message.properties;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(p.headers ?? {})) {
    headers[name] = headerText(value);
  }
  const contentType = typeof p.contentType === 'string' ? p.contentType : undefined;
  const fallback = {
    ...(typeof p.messageId === 'string' && p.messageId !== '' ? { id: p.messageId } : {}),
    ...(typeof p.type === 'string' && p.type !== '' ? { type: p.type } : {}),
    source: typeof p.appId === 'string' && p.appId !== '' ? p.appId : fallbackSource,
    ...(contentType === undefined ? {} : { contentType }),
    ...(typeof p.timestamp === 'number' ? { time: new Date(p.timestamp * 1000).toISOString() } : {}),
  };
  const body = message.content;
  const plain = (): Envelope => fromPrefixedHeaders(headers, body, fallback, isControlHeader);
  if (contentType !== undefined && contentType.toLowerCase().startsWith('application/cloudevents+json')) {
    try {
      return { envelope: decodeStructured(body) };
    } catch (error) {
      const typed = error instanceof FerryError ? error : toFerryError(error);
      return { envelope: plain(), error: typed instanceof DecodeError ? typed : new DecodeError(typed.message) };
    }
  }
  return { envelope: plain() };
}
