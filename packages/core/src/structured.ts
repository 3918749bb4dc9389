import { isJsonContentType, jsonCodec, mediaType } from './codec.js';
import { type EnvelopeFallback, fromPrefixedHeaders, SPEC_VERSION } from './envelope.js';
import { DecodeError } from './errors.js';
import { ENVELOPE_ATTRIBUTE_NAMES, type Envelope, type EnvelopeAttributes } from './message.js';

/** Content type of a CloudEvents JSON document (structured content mode). */
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

/** The member that carries headers whose names are not valid CloudEvents extension names. */
const HEADERS_MEMBER = 'ferryheaders';
const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;
const RESERVED_MEMBERS: ReadonlySet<string> = new Set([
  ...ENVELOPE_ATTRIBUTE_NAMES,
  'data',
  'data_base64',
  'dataschema',
  HEADERS_MEMBER,
]);
const json = jsonCodec();
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function isJsonType(contentType: string | undefined): boolean {
  return contentType !== undefined && isJsonContentType(contentType);
}

function isTextType(contentType: string | undefined): boolean {
  return contentType !== undefined && mediaType(contentType).startsWith('text/');
}

/**
 * Encodes an envelope as one CloudEvents JSON document (structured content mode), for protocols or
 * bridges without headers (MQTT 3.1.1, RabbitMQ's MQTT plugin). JSON data is embedded as JSON, text as
 * a string, anything else as `data_base64`. Headers that are valid CloudEvents extension names become
 * attributes; the others travel in the `ferryheaders` member, so nothing is lost.
 *
 * @throws DecodeError when the body is declared JSON but is not valid JSON.
 */
export function encodeStructured(envelope: Envelope): Uint8Array {
  const a = envelope.attributes;
  const doc: Record<string, unknown> = {};
  for (const name of ENVELOPE_ATTRIBUTE_NAMES) if (a[name] !== undefined) doc[name] = a[name];
  const others: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.headers)) {
    if (EXTENSION_NAME.test(name) && !RESERVED_MEMBERS.has(name)) doc[name] = value;
    else others[name] = value;
  }
  if (Object.keys(others).length > 0) doc[HEADERS_MEMBER] = others;
  if (envelope.body.byteLength > 0) {
    if (isJsonType(a.datacontenttype)) doc['data'] = json.decode(envelope.body);
    else if (isTextType(a.datacontenttype)) doc['data'] = utf8.decode(envelope.body);
    else
      doc['data_base64'] = Buffer.from(
        envelope.body.buffer,
        envelope.body.byteOffset,
        envelope.body.byteLength,
      ).toString('base64');
  }
  return encoder.encode(JSON.stringify(doc));
}

/** True when the body looks like a CloudEvents JSON document (cheap check before decoding). */
export function looksStructured(body: Uint8Array): boolean {
  if (body.byteLength < 20 || body[0] !== 0x7b) return false;
  return Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 4096)).includes('"specversion"');
}

/**
 * Decodes a CloudEvents JSON document into an envelope, safely (the JSON codec's hostile-input
 * limits apply). Unknown string attributes and `ferryheaders` become headers.
 *
 * @throws DecodeError when the document is not valid JSON, is hostile, or lacks `specversion`, `id` or `type`.
 */
export function decodeStructured(body: Uint8Array): Envelope {
  let doc: unknown;
  try {
    doc = json.decode(body);
  } catch (cause) {
    throw new DecodeError(`Invalid CloudEvents JSON document: ${(cause as Error).message}`, { cause });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DecodeError('Invalid CloudEvents JSON document: not a JSON object');
  }
  const d = doc as Record<string, unknown>;
  const text = (name: string): string | undefined => (typeof d[name] === 'string' ? d[name] : undefined);
  const id = text('id');
  const type = text('type');
  if (text('specversion') === undefined || id === undefined || id === '' || type === undefined) {
    throw new DecodeError('Invalid CloudEvents JSON document: specversion, id and type are required strings');
  }
  const attributes: Record<string, string> = {
    id,
    type,
    source: text('source') ?? 'unknown',
    specversion: text('specversion') ?? SPEC_VERSION,
  };
  for (const name of ['time', 'datacontenttype', 'subject', 'partitionkey'] as const) {
    const value = text(name);
    if (value !== undefined) attributes[name] = value;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(d)) {
    if (!RESERVED_MEMBERS.has(name) && typeof value === 'string') headers[name] = value;
  }
  const extra = d[HEADERS_MEMBER];
  if (typeof extra === 'object' && extra !== null) {
    for (const [name, value] of Object.entries(extra)) if (typeof value === 'string') headers[name] = value;
  }
  let data: Uint8Array = new Uint8Array(0);
  if (typeof d['data_base64'] === 'string') data = Buffer.from(d['data_base64'], 'base64');
  else if (d['data'] !== undefined) {
    const contentType = attributes['datacontenttype'];
    // Without datacontenttype, CloudEvents' JSON format means JSON data.
    if (typeof d['data'] === 'string' && contentType !== undefined && !isJsonType(contentType)) {
      data = encoder.encode(d['data']);
    } else {
      data = encoder.encode(JSON.stringify(d['data']));
      if (contentType === undefined) attributes['datacontenttype'] = 'application/json';
    }
  }
  return { attributes: attributes as unknown as EnvelopeAttributes, headers, body: data };
}

/** What a transport read off a received message, for {@link readEnvelope}. */
export interface ReceivedMessage {
  /** Headers (or user properties) as received; `ce-<attribute>` names carry CloudEvents attributes. */
  readonly headers: Readonly<Record<string, string>>;
  /** The payload as received. */
  readonly body: Uint8Array;
  /** What the protocol says besides the headers; its `contentType` is the protocol's content type. */
  readonly fallback: EnvelopeFallback;
  /** True for a header the broker or protocol added: dropped. */
  readonly isControl: (name: string) => boolean;
  /**
   * A body with no content type that looks like a CloudEvents document (a JSON object naming its
   * `specversion`) but does not decode: `data` delivers it as plain data (AMQP, STOMP, where such a
   * body is most likely application JSON), `error` dead-letters it with a `DecodeError` (MQTT 3.1.1,
   * where the structured mode is the default and no content type travels). Default `data`.
   */
  readonly undecodableDocument?: 'data' | 'error';
}

/**
 * Reads a received message's envelope, the same way on every transport: `ce-*` headers (binary mode)
 * win; a body whose content type names CloudEvents JSON is decoded as a structured document (a broken
 * one is returned with a `DecodeError`, for the dead letter); a body without a content type that looks
 * like a document is read as one (a message that crossed a protocol without headers); anything else is
 * a plain client's message with a synthesized envelope.
 */
export function readEnvelope(message: ReceivedMessage): {
  /** The envelope (a synthesized one when the document could not be decoded). */
  envelope: Envelope;
  /** Set when the body claimed to be a CloudEvents document and was not: hand it to core as `Delivery.error`. */
  error?: DecodeError;
} {
  const { headers, body, fallback, isControl } = message;
  const contentType = fallback.contentType;
  const plain = (): Envelope => fromPrefixedHeaders(headers, body, fallback, isControl);
  // A `ce-id` header means Ferry (or another binary-mode producer) wrote the envelope as headers: the
  // body is data even when its content type names CloudEvents (e.g. the dead letter of a broken document).
  if (headers['ce-id'] !== undefined) return { envelope: plain() };
  const declared = contentType !== undefined && contentType.toLowerCase().startsWith('application/cloudevents+json');
  if (!declared && (contentType !== undefined || !looksStructured(body))) return { envelope: plain() };
  try {
    return { envelope: decodeStructured(body) };
  } catch (error) {
    if (!declared && message.undecodableDocument !== 'error') return { envelope: plain() };
    return {
      envelope: plain(),
      error: error instanceof DecodeError ? error : new DecodeError(String(error), { cause: error }),
    };
  }
}
