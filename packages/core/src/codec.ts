import secureJson from 'secure-json-parse';
import { ConfigurationError, DecodeError, ErrorCode, PublishError } from './errors.js';

/**
 * Turns data into bytes and back for one content type. Register more with `ConnectOptions.codecs`;
 * a codec registered for a content type replaces the built-in one.
 */
export interface Codec {
  /** The media type this codec handles, e.g. `application/json` (parameters are ignored when matching). */
  readonly contentType: string;
  /** @throws anything: the publish is rejected with `FERRY_ENCODE`. */
  encode(data: unknown): Uint8Array;
  /** @throws anything: the message goes to the dead letter with `FERRY_DECODE`. */
  decode(body: Uint8Array): unknown;
}

/** The JSON content type, Ferry's default. */
export const JSON_CONTENT_TYPE = 'application/json';
/** Raw bytes: `Uint8Array`/`Buffer` data pass through unchanged. */
export const BYTES_CONTENT_TYPE = 'application/octet-stream';
/** UTF-8 text: string data pass through unchanged. */
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

const utf8 = new TextDecoder('utf-8', { fatal: true });
// Text passes through unchanged: a leading U+FEFF is data, not a byte order mark to strip.
const utf8Text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Options of {@link jsonCodec}. */
export interface JsonCodecOptions {
  /** Deepest nesting of arrays and objects accepted on decode. Default 64. */
  readonly maxDepth?: number;
}

/**
 * JSON codec. Decoding refuses hostile input instead of passing it on: `__proto__` keys and
 * `constructor.prototype` (prototype pollution), nesting deeper than `maxDepth`, invalid UTF-8.
 * An empty body decodes to `undefined` and `undefined` encodes to an empty body.
 */
export function jsonCodec(options: JsonCodecOptions = {}): Codec {
  const maxDepth = options.maxDepth ?? 64;
  if (!Number.isInteger(maxDepth) || maxDepth < 0) {
    throw new ConfigurationError(`json.maxDepth must be an integer >= 0, got ${String(maxDepth)}`);
  }
  return {
    contentType: JSON_CONTENT_TYPE,
    encode(data) {
      if (data === undefined) return new Uint8Array(0);
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError(`${typeof data} cannot be encoded as JSON`);
      return Buffer.from(text, 'utf8');
    },
    decode(body) {
      if (body.byteLength === 0) return undefined;
      const text = utf8.decode(body);
      // A text with no more opening brackets than the limit cannot nest deeper than it: skip the scan.
      const depth = openingBrackets(text, maxDepth) <= maxDepth ? 0 : jsonDepth(body);
      if (depth > maxDepth) throw new RangeError(`JSON nesting depth ${depth} exceeds the limit of ${maxDepth}`);
      // A key can spell `__proto__` or `constructor` only literally or with \u escapes: a text with
      // neither cannot pollute a prototype, so it skips the slower guarded parse.
      if (!text.includes('\\u') && !text.includes('__proto__') && !text.includes('constructor')) {
        return JSON.parse(text) as unknown;
      }
      return secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' }) as unknown;
    },
  };
}

/** How many `{` and `[` a text holds, counting no further than `limit + 1` (native string search). */
function openingBrackets(text: string, limit: number): number {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return count;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return count;
  return count;
}

/** Deepest array/object nesting in a JSON text, counting only brackets outside strings. */
function jsonDepth(body: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** Raw bytes: decode returns a `Buffer` over the received bytes. */
export const bytesCodec: Codec = {
  contentType: BYTES_CONTENT_TYPE,
  encode(data) {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    throw new TypeError(`${BYTES_CONTENT_TYPE} needs a Uint8Array, Buffer or ArrayBuffer`);
  },
  decode(body) {
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  },
};

/** UTF-8 text: decode returns a string; invalid UTF-8 is a decode error. */
export const textCodec: Codec = {
  contentType: TEXT_CONTENT_TYPE,
  encode(data) {
    if (typeof data !== 'string') throw new TypeError(`${TEXT_CONTENT_TYPE} needs a string`);
    return encoder.encode(data);
  },
  decode(body) {
    return utf8Text.decode(body);
  },
};

/** The media type without parameters, lower-case: `Application/JSON; charset=x` → `application/json`. */
export function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/** True for `application/json` and any `+json` media type (parameters and case ignored). */
export function isJsonContentType(contentType: string): boolean {
  const type = mediaType(contentType);
  return type === JSON_CONTENT_TYPE || type.endsWith('+json');
}

/** Picks codecs by content type: built-ins (JSON, bytes, text) plus the ones given. */
export class CodecRegistry {
  readonly #byType = new Map<string, Codec>();

  constructor(codecs: readonly Codec[] = [], json: Codec = jsonCodec()) {
    for (const codec of [json, bytesCodec, textCodec, ...codecs]) this.#byType.set(mediaType(codec.contentType), codec);
  }

  /** The content type a value gets when the publisher names none. */
  static inferContentType(data: unknown): string {
    if (data instanceof Uint8Array || data instanceof ArrayBuffer) return BYTES_CONTENT_TYPE;
    if (typeof data === 'string') return TEXT_CONTENT_TYPE;
    return JSON_CONTENT_TYPE;
  }

  /** The codec for a content type: exact media type, then `+json` → JSON, `text/*` → text. */
  find(contentType: string): Codec | undefined {
    const type = mediaType(contentType);
    const exact = this.#byType.get(type);
    if (exact !== undefined) return exact;
    if (isJsonContentType(type)) return this.#byType.get(JSON_CONTENT_TYPE);
    if (type.startsWith('text/')) return this.#byType.get('text/plain');
    return undefined;
  }

  /** @throws PublishError `FERRY_ENCODE` */
  encode(data: unknown, contentType: string): Uint8Array {
    const codec = this.find(contentType);
    if (codec === undefined) {
      throw new PublishError(
        ErrorCode.ENCODE,
        `No codec for content type "${contentType}": register one with ConnectOptions.codecs`,
      );
    }
    try {
      return codec.encode(data);
    } catch (cause) {
      throw new PublishError(ErrorCode.ENCODE, `Cannot encode data as ${contentType}: ${errorText(cause)}`, {
        cause,
      });
    }
  }

  /** @throws DecodeError */
  decode(body: Uint8Array, contentType: string | undefined): unknown {
    const type = contentType ?? BYTES_CONTENT_TYPE;
    const codec = this.find(type);
    if (codec === undefined) {
      throw new DecodeError(
        `No codec for content type "${type}": register one with ConnectOptions.codecs, or subscribe with { decode: false }`,
      );
    }
    try {
      return codec.decode(body);
    } catch (cause) {
      throw new DecodeError(`Cannot decode a ${type} body of ${body.byteLength} bytes: ${errorText(cause)}`, {
        cause,
      });
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
