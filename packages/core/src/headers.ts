import { ConfigurationError, ErrorCode } from './errors.js';

/** The attempt number of a retried copy (`1` on first delivery). Written only by Ferry. */
export const HEADER_ATTEMPT = 'ferry-attempt';
/** On a dead letter: why it was dead-lettered (the last error's message). */
export const HEADER_DEAD_LETTER_REASON = 'ferry-dead-letter-reason';
/** On a dead letter: the last error's stable code (e.g. `FERRY_DECODE`). */
export const HEADER_DEAD_LETTER_CODE = 'ferry-dead-letter-code';
/** On a dead letter: how many attempts were made. */
export const HEADER_DEAD_LETTER_ATTEMPTS = 'ferry-dead-letter-attempts';
/** On a dead letter: where it came from, e.g. `queue:orders` or `topic:orders.*#billing`. */
export const HEADER_DEAD_LETTER_ORIGIN = 'ferry-dead-letter-origin';
/** On a dead letter: ISO time it was dead-lettered. */
export const HEADER_DEAD_LETTER_TIME = 'ferry-dead-letter-time';
/** W3C trace context header written and read by the tracing middleware. */
export const HEADER_TRACEPARENT = 'traceparent';
/** W3C trace state header. */
export const HEADER_TRACESTATE = 'tracestate';

/** Prefix of the CloudEvents attribute headers on AMQP and STOMP (`ce-id`, `ce-type`, ...). */
export const CLOUDEVENTS_HEADER_PREFIX = 'ce-';
/** Prefix of Ferry's own headers. Reserved: applications cannot set them. */
export const FERRY_HEADER_PREFIX = 'ferry-';

/** Protocol control header names no application header may use (compared lower-case). */
const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
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
  // STOMP frame headers, and the AMQP properties RabbitMQ's STOMP plugin maps to headers: a header with
  // one of these names would change the message or vanish on some transport, never arrive everywhere.
  'id',
  'type',
  'timestamp',
  'priority',
  'expiration',
  'expires',
  'correlation-id',
  'reply-to',
  'user-id',
  'app-id',
  'amqp-message-id',
  'durable',
  'auto-delete',
  'exclusive',
  'prefetch-count',
  // RabbitMQ queue arguments: on a STOMP SEND they change how the queue is declared.
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
  'x-single-active-consumer',
  'x-delivery-limit',
  'x-queue-mode',
  'x-max-age',
]);

/** True when `name` is reserved for Ferry, CloudEvents or a protocol and cannot be set by an application. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower.startsWith(FERRY_HEADER_PREFIX) ||
    lower.startsWith(CLOUDEVENTS_HEADER_PREFIX) ||
    lower.startsWith('x-mqtt-') ||
    CONTROL_HEADERS.has(lower)
  );
}

// Names refuse control characters (tab, CR and LF included), space, DEL, ':' and '\\' (STOMP cannot carry a
// backslash in a name through stompjs); values may hold any text.
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const BAD_NAME = /[\u0000-\u0020\u007f:\\]/;

/**
 * Checks application headers before a publish: string names and values, no reserved names.
 *
 * @throws ConfigurationError `FERRY_RESERVED_HEADER` or `FERRY_INVALID_HEADER`.
 */
export function assertApplicationHeaders(headers: Readonly<Record<string, unknown>>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.length === 0 || name.length > 255 || BAD_NAME.test(name)) {
      throw new ConfigurationError(
        `Invalid header name ${JSON.stringify(name)}: use 1-255 visible characters without ':', '\\' or spaces`,
        { code: ErrorCode.INVALID_HEADER },
      );
    }
    if (isReservedHeader(name)) {
      throw new ConfigurationError(
        `Header ${JSON.stringify(name)} is reserved (ce-*, ferry-*, x-mqtt-*, protocol control headers and the AMQP properties and queue arguments RabbitMQ reads from STOMP headers): pick another name, e.g. "x-${name.replace(/^(ce|ferry)-/i, '')}"`,
        { code: ErrorCode.RESERVED_HEADER },
      );
    }
    if (typeof value !== 'string') {
      throw new ConfigurationError(`Header ${JSON.stringify(name)} must be a string, got ${typeof value}`, {
        code: ErrorCode.INVALID_HEADER,
      });
    }
  }
}
