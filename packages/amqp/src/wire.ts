import type { ConsumeMessage, Options } from 'amqplib';
import {
  type FerryError,
  type Destination,
  type Envelope,
  encodeStructured,
  readEnvelope,
  STRUCTURED_CONTENT_TYPE,
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

/** amqplib's decoded forms of AMQP timestamps (`T`) and decimals (`D`). */
function special(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('!' in value)) return undefined;
  const tagged = value as { '!': unknown; value?: unknown };
  if (tagged['!'] === 'timestamp' && typeof tagged.value === 'number') {
    return new Date(tagged.value * 1000).toISOString();
  }
  if (tagged['!'] === 'decimal' && typeof tagged.value === 'object' && tagged.value !== null) {
    const { places, digits } = tagged.value as { places?: unknown; digits?: unknown };
    if (typeof places === 'number' && typeof digits === 'number') return String(digits / 10 ** places);
  }
  return undefined;
}

/** An AMQP field-table value as text: foreign producers send numbers, booleans, byte arrays, timestamps, tables. */
export function headerText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined) return '';
  const tagged = special(value);
  if (tagged !== undefined) return tagged;
  try {
    return JSON.stringify(value, (_key, v: unknown) => {
      // Buffer#toJSON runs before the replacer: turn its { type: 'Buffer', data } back into text.
      if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer') {
        const data = (v as { data?: unknown }).data;
        if (Array.isArray(data)) return Buffer.from(data as number[]).toString('utf8');
      }
      if (typeof v === 'bigint') return String(v);
      return special(v) ?? v;
    });
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Whether `value` fits an AMQP short string (255 UTF-8 bytes); most values are short enough to skip counting. */
function fitsShortString(value: string): boolean {
  return value.length <= 85 || Buffer.byteLength(value) <= 255;
}

let lastTime: string | undefined;
let lastSeconds = Number.NaN;

/** Whole seconds of an RFC 3339 time; consecutive messages mostly carry the same string, so it is parsed once. */
function epochSeconds(time: string | undefined): number {
  if (time === undefined) return Number.NaN;
  if (time !== lastTime) {
    lastTime = time;
    lastSeconds = Math.floor(Date.parse(time) / 1000);
  }
  return lastSeconds;
}

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
function truncateBytes(text: string, max: number): string {
  if (text.length * 3 <= max || Buffer.byteLength(text) <= max) return text;
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char) > max) break;
    out += char;
  }
  return out;
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
  const seconds = epochSeconds(a.time);
  // AMQP properties are short strings (255 bytes at most). They are a courtesy to plain AMQP clients:
  // the `ce-*` headers carry every attribute in full, so a longer value is left out of the properties.
  const options: Options.Publish = { persistent, mandatory };
  if (fitsShortString(a.id)) options.messageId = a.id;
  if (fitsShortString(a.type)) options.type = a.type;
  options.appId = truncateBytes(a.source, 255);
  if (Number.isFinite(seconds)) options.timestamp = seconds;
  if (isStructured(destination)) {
    options.contentType = STRUCTURED_CONTENT_TYPE;
    options.headers = {};
    return { content: Buffer.from(encodeStructured(envelope)), options };
  }
  if (a.datacontenttype !== undefined && fitsShortString(a.datacontenttype)) options.contentType = a.datacontenttype;
  options.headers = toPrefixedHeaders(envelope);
  const body = envelope.body;
  return {
    content: Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    options,
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
  const fallback: { id?: string; type?: string; source: string; contentType?: string; time?: string } = {
    source: typeof p.appId === 'string' && p.appId !== '' ? p.appId : fallbackSource,
  };
  if (typeof p.messageId === 'string' && p.messageId !== '') fallback.id = p.messageId;
  if (typeof p.type === 'string' && p.type !== '') fallback.type = p.type;
  if (contentType !== undefined) fallback.contentType = contentType;
  // Only a message without `ce-time` (a plain client's) needs its AMQP timestamp formatted.
  if (typeof p.timestamp === 'number' && headers['ce-time'] === undefined) {
    fallback.time = new Date(p.timestamp * 1000).toISOString();
  }
  // Without a content type, a CloudEvents document in the body (e.g. a structured message that crossed
  // RabbitMQ's MQTT plugin, where MQTT 3.1.1 has no content type) is read as one when it decodes.
  return readEnvelope({ headers, body: message.content, fallback, isControl: isControlHeader });
}
