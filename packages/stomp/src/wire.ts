import type { IMessage } from '@stomp/stompjs';
import {
  type Destination,
  type Envelope,
  type FerryError,
  encodeStructured,
  readEnvelope,
  STRUCTURED_CONTENT_TYPE,
  toPrefixedHeaders,
} from '@ferry/core';

/**
 * Headers the broker or protocol adds to a MESSAGE, never the application's: STOMP frame headers, the
 * SEND and SUBSCRIBE headers RabbitMQ echoes back, and the AMQP properties it maps to headers.
 */
const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'destination',
  'message-id',
  'subscription',
  'ack',
  'content-length',
  'content-type',
  'receipt',
  'persistent',
  'durable',
  'auto-delete',
  'exclusive',
  'id',
  'prefetch-count',
  'redelivered',
  'x-delivery-count',
  'x-queue-name',
  'x-queue-type',
  'x-message-ttl',
  'x-expires',
  'x-max-length',
  'x-max-length-bytes',
  'x-overflow',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-priority',
  'amqp-message-id',
  'app-id',
  'type',
  'timestamp',
  'user-id',
  'correlation-id',
  'reply-to',
  'priority',
  'expires',
  'expiration',
  'content-encoding',
]);
const CONTROL_PREFIXES = ['ferry-oversize', 'x-death', 'x-first-death-', 'x-last-death-', 'x-mqtt-', 'x-received-from'];

/** True for a header a broker or protocol adds (compared lower-case). */
export function isControlHeader(name: string): boolean {
  return CONTROL_HEADERS.has(name) || CONTROL_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** The frame headers and body of an outgoing envelope. */
export function toFrame(
  envelope: Envelope,
  destination: Destination,
  persistent: boolean,
): { headers: Record<string, string>; body: Uint8Array } {
  if (destination.options.contentMode === 'structured') {
    return {
      headers: { 'content-type': STRUCTURED_CONTENT_TYPE, persistent: String(persistent) },
      body: encodeStructured(envelope),
    };
  }
  const a = envelope.attributes;
  // AMQP properties for plain AMQP consumers (RabbitMQ maps these STOMP headers to them; they are AMQP
  // short strings, so longer values stay only in the ce-* headers).
  const headers: Record<string, string> = {};
  if (fitsShortString(a.id)) headers['amqp-message-id'] = a.id;
  if (fitsShortString(a.type)) headers['type'] = a.type;
  if (fitsShortString(a.source)) headers['app-id'] = a.source;
  Object.assign(headers, toPrefixedHeaders(envelope));
  if (a.datacontenttype !== undefined) headers['content-type'] = a.datacontenttype;
  headers['persistent'] = persistent ? 'true' : 'false';
  return { headers, body: envelope.body };
}

/**
 * The envelope of a MESSAGE. Ferry's messages carry `ce-*` headers; a plain client's message gets one
 * synthesized (RabbitMQ's `amqp-message-id`, `type`, `timestamp`, `app-id` and `content-type` when the
 * message came from AMQP); a CloudEvents JSON document in the body is read as one.
 */
export function fromFrame(message: IMessage, fallbackSource: string): { envelope: Envelope; error?: FerryError } {
  const headers = message.headers as Record<string, string>;
  const contentType = headers['content-type'];
  const timestamp = Number(headers['timestamp']);
  const fallback = {
    ...(nonEmpty(headers['amqp-message-id']) === undefined ? {} : { id: headers['amqp-message-id']! }),
    ...(nonEmpty(headers['type']) === undefined ? {} : { type: headers['type']! }),
    source: nonEmpty(headers['app-id']) ?? fallbackSource,
    ...(contentType === undefined ? {} : { contentType }),
    ...(Number.isFinite(timestamp) && timestamp > 0 ? { time: new Date(timestamp * 1000).toISOString() } : {}),
  };
  return readEnvelope({ headers, body: message.binaryBody, fallback, isControl: isControlHeader });
}

/** Whether `value` fits an AMQP short string (255 UTF-8 bytes); most values are short enough to skip counting. */
function fitsShortString(value: string): boolean {
  return value.length <= 85 || Buffer.byteLength(value) <= 255;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
