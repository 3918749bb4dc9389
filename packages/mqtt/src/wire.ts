import {
  ConfigurationError,
  type DecodeError,
  type Destination,
  type Envelope,
  type EnvelopeFallback,
  ENVELOPE_ATTRIBUTE_NAMES,
  encodeStructured,
  readEnvelope,
  STRUCTURED_CONTENT_TYPE,
} from '@ferry/core';

/** What a PUBLISH carries besides topic and QoS. */
export interface WireMessage {
  readonly payload: Buffer;
  readonly properties?: PublishProperties;
}

/** The MQTT 5 PUBLISH properties Ferry reads and writes. */
export interface PublishProperties {
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
  correlationData?: Buffer;
}

/**
 * The user property naming the user properties whose values are percent-encoded (a JSON array of names):
 * MQTT forbids control characters in UTF-8 strings (Mosquitto closes the connection of a client that
 * sends one), so a value holding one (a newline, say) travels percent-encoded and is decoded on receipt.
 */
export const ENCODED_PROPERTY = 'ferry-encoded';

// eslint-disable-next-line no-control-regex -- the point is to find the characters MQTT forbids
const FORBIDDEN_IN_STRINGS = /[\u0000-\u001f\u007f-\u009f]/;

/** Longest MQTT UTF-8 string, bytes. */
const MAX_STRING_BYTES = 65_535;

/** The CloudEvents extension that travels in MQTT 5's Correlation Data field. */
export const CORRELATION_HEADER = 'correlationid';

const ATTRIBUTES: ReadonlySet<string> = new Set(ENVELOPE_ATTRIBUTE_NAMES);

/**
 * How an envelope travels: `binary` (MQTT 5 only: CloudEvents attributes and headers as user properties,
 * `datacontenttype` in Content Type — the CloudEvents MQTT binding's binary mode), `structured` (a
 * CloudEvents JSON document as the payload) or `plain` (MQTT 3.1.1 asked for binary mode: the payload
 * alone, as plain subscribers expect; the envelope is lost).
 */
export type WireMode = 'binary' | 'structured' | 'plain';

/** The mode a destination asks for under a protocol version: 3.1.1 has no headers, so it defaults to structured. */
export function wireMode(destination: Destination, protocolVersion: 4 | 5): WireMode {
  const mode = destination.options.contentMode;
  if (mode === 'structured') return 'structured';
  if (protocolVersion === 5) return 'binary';
  return mode === 'binary' ? 'plain' : 'structured';
}

/** The payload and properties of an outgoing envelope. */
export function toWire(envelope: Envelope, mode: WireMode, protocolVersion: 4 | 5): WireMessage {
  if (mode === 'structured') {
    const payload = Buffer.from(encodeStructured(envelope));
    return protocolVersion === 5 ? { payload, properties: { contentType: STRUCTURED_CONTENT_TYPE } } : { payload };
  }
  const payload = Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength);
  if (mode === 'plain') return { payload };
  const userProperties: Record<string, string> = {};
  const a = envelope.attributes;
  for (const name of ENVELOPE_ATTRIBUTE_NAMES) {
    const value = a[name];
    if (value !== undefined && name !== 'datacontenttype') userProperties[name] = value;
  }
  let correlationData: Buffer | undefined;
  for (const [name, value] of Object.entries(envelope.headers)) {
    if (name === CORRELATION_HEADER) correlationData = Buffer.from(value);
    else userProperties[name] = value;
  }
  const encoded: string[] = [];
  for (const [name, value] of Object.entries(userProperties)) {
    if (FORBIDDEN_IN_STRINGS.test(value)) {
      userProperties[name] = encodeURIComponent(value);
      encoded.push(name);
    }
    if (Buffer.byteLength(name) > MAX_STRING_BYTES || Buffer.byteLength(userProperties[name]!) > MAX_STRING_BYTES) {
      throw new ConfigurationError(
        `Header ${JSON.stringify(name.slice(0, 50))} is longer than MQTT allows for a user property (65535 bytes): shorten it or send it in the body`,
      );
    }
  }
  if (encoded.length > 0) userProperties[ENCODED_PROPERTY] = JSON.stringify(encoded);
  const properties: PublishProperties = { userProperties };
  if (a.datacontenttype !== undefined) properties.contentType = a.datacontenttype;
  if (correlationData !== undefined) properties.correlationData = correlationData;
  return { payload, properties };
}

/** The names listed in a `ferry-encoded` user property (anything unreadable lists none). */
function encodedNames(raw: string | string[] | undefined): ReadonlySet<string> {
  if (typeof raw !== 'string') return new Set();
  try {
    const names: unknown = JSON.parse(raw);
    return new Set(Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : []);
  } catch {
    return new Set();
  }
}

/** User properties a broker or MQTT bridge adds, never the application's. */
function isControl(name: string): boolean {
  return name.startsWith('x-mqtt-');
}

/**
 * The envelope of a received PUBLISH. Ferry's MQTT 5 messages carry their attributes as user properties;
 * a CloudEvents JSON document (structured mode, or any producer's) is read as one; anything else — a
 * plain client's string, JSON or bytes — gets a synthesized envelope (new id, type `unknown`, the
 * topic as source, MQTT 5's Content Type as `datacontenttype`).
 */
export function fromWire(
  message: WireMessage,
  fallback: EnvelopeFallback,
): { envelope: Envelope; error?: DecodeError } {
  const props = message.properties;
  const body = new Uint8Array(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  const headers: Record<string, string> = {};
  const user = props?.userProperties ?? {};
  const encoded = encodedNames(user[ENCODED_PROPERTY]);
  for (const [name, raw] of Object.entries(user)) {
    if (name === ENCODED_PROPERTY) continue;
    let value = Array.isArray(raw) ? raw.join(',') : raw;
    if (encoded.has(name)) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // not ours after all: keep the value as it came
      }
    }
    headers[ATTRIBUTES.has(name) ? `ce-${name}` : name] = value;
  }
  if (props?.correlationData !== undefined && headers[CORRELATION_HEADER] === undefined) {
    headers[CORRELATION_HEADER] = props.correlationData.toString('utf8');
  }
  const contentType = props?.contentType;
  return readEnvelope({
    headers,
    body,
    fallback: contentType === undefined ? fallback : { ...fallback, contentType },
    isControl,
    // MQTT 3.1.1 has no content type: a payload that claims to be a CloudEvents document and fails to
    // decode (broken, incomplete or hostile) is poison, not data.
    undecodableDocument: 'error',
  });
}
