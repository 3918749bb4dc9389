import { randomUUID } from 'node:crypto';
import { CodecRegistry } from './codec.js';
import { describeDestination, type Destination } from './destination.js';
import { ConfigurationError } from './errors.js';
import { CLOUDEVENTS_HEADER_PREFIX, HEADER_ATTEMPT, isReservedHeader } from './headers.js';
import { isoNow } from './timing.js';
import { ENVELOPE_ATTRIBUTE_NAMES, type Envelope, type EnvelopeAttributes, type OutgoingMessage } from './message.js';

const KNOWN_ATTRIBUTES: ReadonlySet<string> = new Set(ENVELOPE_ATTRIBUTE_NAMES);

/** The CloudEvents spec version Ferry writes. */
export const SPEC_VERSION = '1.0';

/** Builds the wire envelope of an outgoing message whose data is already validated. */
export function createEnvelope(
  message: OutgoingMessage,
  body: Uint8Array,
  contentType: string,
  source: string,
  headers: Readonly<Record<string, string>>,
): Envelope {
  if (message.id === '') {
    throw new ConfigurationError('A message id cannot be empty: omit it to get a generated one');
  }
  if (message.time instanceof Date && Number.isNaN(message.time.getTime())) {
    throw new ConfigurationError('message.time is an invalid Date: pass a valid Date or an RFC 3339 string');
  }
  const time = message.time instanceof Date ? message.time.toISOString() : (message.time ?? isoNow());
  const attributes: { -readonly [K in keyof EnvelopeAttributes]: EnvelopeAttributes[K] } = {
    id: message.id ?? randomUUID(),
    type: message.type,
    source,
    specversion: SPEC_VERSION,
    time,
    datacontenttype: contentType,
  };
  if (message.subject !== undefined) attributes.subject = message.subject;
  if (message.key !== undefined) attributes.partitionkey = message.key;
  return { attributes, headers, body };
}

/** The content type for an outgoing message: the one named, else inferred from the data. */
export function contentTypeOf(message: OutgoingMessage): string {
  return message.datacontenttype ?? CodecRegistry.inferContentType(message.data);
}

/**
 * Flattens an envelope into one header map: `ce-<attribute>` for every CloudEvents attribute (the
 * binding AMQP 0-9-1 and STOMP use) plus the envelope's own headers.
 */
export function toPrefixedHeaders(envelope: Envelope, prefix = CLOUDEVENTS_HEADER_PREFIX): Record<string, string> {
  const out: Record<string, string> = { ...envelope.headers };
  for (const name of ENVELOPE_ATTRIBUTE_NAMES) {
    const value = envelope.attributes[name];
    if (value !== undefined) out[prefix + name] = value;
  }
  return out;
}

/** What a transport knows about a message that arrived without a complete envelope. */
export interface EnvelopeFallback {
  /** The broker's message id, used when `ce-id` is absent. */
  readonly id?: string;
  /** Default `type` when absent. Default `'unknown'`. */
  readonly type?: string;
  /** Default `source` when absent, e.g. `amqp://host/queue`. */
  readonly source?: string;
  /** The protocol's content type (AMQP `content_type`, MQTT 5 Content Type, STOMP `content-type`). */
  readonly contentType?: string;
  /** The protocol's timestamp as RFC 3339 (AMQP `timestamp`), used when `ce-time` is absent. */
  readonly time?: string;
}

/**
 * Reads an envelope from a header map written by {@link toPrefixedHeaders}. Headers the application
 * did not write (`isControl` returns true) are dropped; a message a plain client published gets a
 * synthesized envelope (generated id, `type` from the fallback) so it still reaches the handler.
 */
export function fromPrefixedHeaders(
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
  fallback: EnvelopeFallback = {},
  isControl: (name: string) => boolean = () => false,
  prefix = CLOUDEVENTS_HEADER_PREFIX,
): Envelope {
  const attrs: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(prefix)) {
      const attribute = lower.slice(prefix.length);
      // CloudEvents extensions (e.g. `ce-traceparent` from another producer) become plain headers.
      if (KNOWN_ATTRIBUTES.has(attribute)) attrs[attribute] = value;
      else if (attribute !== '' && !(attribute in rest)) rest[attribute] = value;
    } else if (!isControl(lower)) rest[name] = value;
  }
  const contentType = attrs['datacontenttype'] ?? fallback.contentType;
  const attributes: EnvelopeAttributes = {
    id: nonEmpty(attrs['id']) ?? nonEmpty(fallback.id) ?? randomUUID(),
    type: nonEmpty(attrs['type']) ?? fallback.type ?? 'unknown',
    source: nonEmpty(attrs['source']) ?? fallback.source ?? 'unknown',
    specversion: attrs['specversion'] ?? SPEC_VERSION,
    ...optional('time', attrs['time'] ?? fallback.time),
    ...optional('datacontenttype', contentType),
    ...optional('subject', attrs['subject']),
    ...optional('partitionkey', attrs['partitionkey']),
  };
  return { attributes, headers: rest, body };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/**
 * The attempt number carried by an envelope. Per DESIGN.md: a value that is not an integer in
 * [1, maxAttempts] counts as 1 (so a spoofed header can neither skip retries nor crash); in-range
 * values are trusted.
 */
export function attemptOf(headers: Readonly<Record<string, string>>, maxAttempts: number): number {
  const raw = headers[HEADER_ATTEMPT];
  if (raw === undefined || !/^[1-9][0-9]{0,8}$/.test(raw)) return 1;
  const value = Number(raw);
  return value <= maxAttempts ? value : 1;
}

/** Application headers only: drops Ferry's own `ferry-*` control headers. */
export function applicationHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!isReservedHeader(name) || name.startsWith('ferry-dead-letter-')) out[name] = value;
  }
  return out;
}

/** The same destination label core uses in dead letters: `queue:orders`, `topic:orders.*#billing`. */
export function originOf(source: Destination, group?: string): string {
  return group === undefined ? describeDestination(source) : `${describeDestination(source)}#${group}`;
}
