import { describe, expect, it } from 'vitest';
import {
  BYTES_CONTENT_TYPE,
  type Codec,
  CodecRegistry,
  JSON_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
  bytesCodec,
  jsonCodec,
  mediaType,
  textCodec,
} from './codec.js';
import { ConfigurationError, DecodeError, ErrorCode, PublishError } from './errors.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('jsonCodec', () => {
  const json = jsonCodec();

  it.each([
    ['a nested object', { order: { id: 'o-1', lines: [{ sku: 'a', qty: 2 }], meta: { tags: ['x', 'y'] } } }],
    ['unicode text', { name: 'Zoë 東京 🚢', escaped: 'quote " backslash \\ newline \n tab \t' }],
    ['numbers', { int: 42, negative: -7, float: 3.25, big: Number.MAX_SAFE_INTEGER, tiny: 5e-324, zero: 0 }],
    ['null', null],
    ['an array', [1, 'two', null, true, { three: [3] }]],
    ['a string', 'plain'],
    ['a boolean', false],
    ['an empty object', {}],
  ])('round-trips %s', (_name, data) => {
    const body = json.encode(data);
    expect(body).toBeInstanceOf(Uint8Array);
    expect(json.decode(body)).toEqual(data);
  });

  it('writes compact UTF-8 JSON', () => {
    expect(text(json.encode({ a: [1, 'é'] }))).toBe('{"a":[1,"é"]}');
  });

  it('encodes undefined as an empty body and decodes an empty body as undefined', () => {
    const body = json.encode(undefined);
    expect(body.byteLength).toBe(0);
    expect(json.decode(body)).toBeUndefined();
    expect(json.decode(new Uint8Array(0))).toBeUndefined();
  });

  it('refuses data JSON cannot represent', () => {
    expect(() => json.encode(() => 1)).toThrow(TypeError);
    expect(() => json.encode(Symbol('s'))).toThrow(TypeError);
    expect(() => json.encode(10n)).toThrow(TypeError);
  });

  it('refuses malformed JSON', () => {
    expect(() => json.decode(utf8('{"a":'))).toThrow(SyntaxError);
    expect(() => json.decode(utf8("{'a':1}"))).toThrow(SyntaxError);
  });

  describe('hostile input', () => {
    it.each([
      ['__proto__ at the top', '{"__proto__":{"polluted":1}}'],
      ['__proto__ nested in an object', '{"a":{"b":{"__proto__":{"polluted":1}}}}'],
      ['__proto__ inside an array', '[1,{"__proto__":{"polluted":1}}]'],
      ['__proto__ set to null', '{"__proto__":null}'],
      ['__proto__ with spaces before the colon', '{"__proto__"  \n :{"polluted":1}}'],
      ['constructor.prototype', '{"constructor":{"prototype":{"polluted":1}}}'],
      ['nested constructor.prototype', '{"a":[{"constructor":{"prototype":{"polluted":1}}}]}'],
      ['an escaped underscore', '{"\\u005f_proto__":{"polluted":1}}'],
      ['an upper-case escape', '{"\\u005F\\u005Fproto\\u005F\\u005F":{"polluted":1}}'],
      ['every character escaped', '{"\\u005f\\u005f\\u0070\\u0072\\u006f\\u0074\\u006f\\u005f\\u005f":{"polluted":1}}'],
      ['an escaped constructor', '{"constr\\u0075ctor":{"prototype":{"polluted":1}}}'],
      ['an escaped prototype', '{"constructor":{"protot\\u0079pe":{"polluted":1}}}'],
    ])('refuses %s', (_name, input) => {
      expect(() => json.decode(utf8(input))).toThrow(/forbidden prototype property/);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });

    it('accepts harmless look-alikes', () => {
      expect(json.decode(utf8('{"constructor":"Car","proto":1,"__proto":2,"_proto__":3}'))).toEqual({
        constructor: 'Car',
        proto: 1,
        __proto: 2,
        _proto__: 3,
      });
      expect(json.decode(utf8('{"constructor":{"name":"x"}}'))).toEqual({ constructor: { name: 'x' } });
      expect(json.decode(utf8('{"note":"__proto__"}'))).toEqual({ note: '__proto__' });
    });

    it('refuses 10,000 nested brackets quickly, without a stack overflow', () => {
      const start = performance.now();
      expect(() => json.decode(utf8('['.repeat(10_000) + ']'.repeat(10_000)))).toThrow(RangeError);
      expect(() => json.decode(utf8('['.repeat(10_000)))).toThrow(/depth 10000 exceeds the limit of 64/);
      expect(() => json.decode(utf8('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)))).toThrow(RangeError);
      expect(performance.now() - start).toBeLessThan(1_000);
    });

    it('accepts nesting up to maxDepth and refuses one more', () => {
      const codec = jsonCodec({ maxDepth: 3 });
      expect(codec.decode(utf8('[[{"a":1}]]'))).toEqual([[{ a: 1 }]]);
      expect(() => codec.decode(utf8('[[[{"a":1}]]]'))).toThrow(/depth 4 exceeds the limit of 3/);
      expect(jsonCodec({ maxDepth: 0 }).decode(utf8('12'))).toBe(12);
      expect(() => jsonCodec({ maxDepth: 0 }).decode(utf8('[]'))).toThrow(RangeError);
    });

    it('allows the default depth of 64', () => {
      expect(json.decode(utf8('['.repeat(64) + ']'.repeat(64)))).toBeInstanceOf(Array);
      expect(() => json.decode(utf8('['.repeat(65) + ']'.repeat(65)))).toThrow(RangeError);
    });

    it('does not count brackets inside strings, escaped quotes included', () => {
      const codec = jsonCodec({ maxDepth: 1 });
      const brackets = '[{'.repeat(500);
      expect(codec.decode(utf8(JSON.stringify({ s: brackets })))).toEqual({ s: brackets });
      const tricky = { a: 'quote \\" [[[[', b: 'backslash \\', c: '\\"{{{{' };
      expect(codec.decode(utf8(JSON.stringify(tricky)))).toEqual(tricky);
      // A string ending in a backslash must not swallow the quote that closes it.
      expect(() => codec.decode(utf8(JSON.stringify(['\\', [[1]]])))).toThrow(/depth 3 exceeds/);
    });

    it('refuses invalid UTF-8', () => {
      const invalid = [
        Uint8Array.of(0x22, 0xff, 0x22),
        Uint8Array.of(0x22, 0xc3, 0x22), // truncated two-byte sequence
        Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22), // an encoded surrogate
        Uint8Array.of(0x22, 0xc0, 0xaf, 0x22), // an overlong '/'
      ];
      for (const body of invalid) expect(() => json.decode(body)).toThrow(TypeError);
    });

    it('rejects an invalid maxDepth', () => {
      for (const maxDepth of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => jsonCodec({ maxDepth })).toThrow(ConfigurationError);
      }
    });
  });
});

describe('bytesCodec', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);

  it('passes a Uint8Array and a Buffer through unchanged', () => {
    expect(bytesCodec.encode(all)).toBe(all);
    const buffer = Buffer.from(all);
    expect(bytesCodec.encode(buffer)).toBe(buffer);
    expect([...bytesCodec.encode(new Uint8Array(all).buffer)]).toEqual([...all]);
  });

  it('decodes to a Buffer with all 256 byte values intact', () => {
    const decoded = bytesCodec.decode(bytesCodec.encode(all));
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect([...(decoded as Buffer)]).toEqual([...all]);
  });

  it('decodes only the view it is given, not the whole underlying buffer', () => {
    const view = all.subarray(10, 20);
    const decoded = bytesCodec.decode(view) as Buffer;
    expect(decoded.byteLength).toBe(10);
    expect([...decoded]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('refuses anything but bytes', () => {
    expect(() => bytesCodec.encode('text')).toThrow(TypeError);
    expect(() => bytesCodec.encode({ a: 1 })).toThrow(TypeError);
    expect(() => bytesCodec.encode([1, 2])).toThrow(TypeError);
  });
});

describe('textCodec', () => {
  it('round-trips strings, unicode included', () => {
    for (const value of ['', 'hello', 'Zoë 東京 🚢', 'line\nbreak\u0000nul']) {
      expect(textCodec.decode(textCodec.encode(value))).toBe(value);
    }
    expect([...textCodec.encode('é')]).toEqual([0xc3, 0xa9]);
  });

  it('keeps a leading U+FEFF: text passes through unchanged', () => {
    expect(textCodec.decode(textCodec.encode('\uFEFFhi'))).toBe('\uFEFFhi');
  });

  it('refuses non-strings and invalid UTF-8', () => {
    expect(() => textCodec.encode(42)).toThrow(TypeError);
    expect(() => textCodec.encode(Buffer.from('x'))).toThrow(TypeError);
    expect(() => textCodec.decode(Uint8Array.of(0x68, 0xff))).toThrow(TypeError);
  });
});

describe('mediaType', () => {
  it('drops parameters and lower-cases', () => {
    expect(mediaType('Application/JSON; charset=UTF-8')).toBe('application/json');
    expect(mediaType('  text/plain  ')).toBe('text/plain');
    expect(mediaType('')).toBe('');
  });
});

describe('CodecRegistry', () => {
  const registry = new CodecRegistry();

  it('infers a content type from the data', () => {
    expect(CodecRegistry.inferContentType(Buffer.from('x'))).toBe(BYTES_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType(new Uint8Array(2))).toBe(BYTES_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType(new ArrayBuffer(2))).toBe(BYTES_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType('hi')).toBe(TEXT_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType('')).toBe(TEXT_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType({ a: 1 })).toBe(JSON_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType([1])).toBe(JSON_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType(7)).toBe(JSON_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType(null)).toBe(JSON_CONTENT_TYPE);
    expect(CodecRegistry.inferContentType(undefined)).toBe(JSON_CONTENT_TYPE);
  });

  it('finds the built-ins, ignoring case and parameters', () => {
    expect(registry.find('application/json')?.contentType).toBe(JSON_CONTENT_TYPE);
    expect(registry.find('APPLICATION/Json; charset=utf-8')?.contentType).toBe(JSON_CONTENT_TYPE);
    expect(registry.find('application/octet-stream')).toBe(bytesCodec);
    expect(registry.find('Text/Plain;charset=UTF-8')).toBe(textCodec);
  });

  it('falls back from +json to JSON and from text/* to text', () => {
    expect(registry.find('application/cloudevents+json')?.contentType).toBe(JSON_CONTENT_TYPE);
    expect(registry.find('application/vnd.acme.order+JSON; v=2')?.contentType).toBe(JSON_CONTENT_TYPE);
    expect(registry.find('text/csv')).toBe(textCodec);
    expect(registry.find('TEXT/HTML; charset=utf-8')).toBe(textCodec);
    expect(registry.find('application/xml')).toBeUndefined();
    expect(registry.find('image/png')).toBeUndefined();
  });

  it('encodes and decodes through the codec of the content type', () => {
    const data = { id: 1, name: 'Zoë' };
    const body = registry.encode(data, 'application/json; charset=utf-8');
    expect(registry.decode(body, 'application/json')).toEqual(data);
    expect(registry.decode(registry.encode('hi', TEXT_CONTENT_TYPE), 'text/markdown')).toBe('hi');
    expect(registry.decode(registry.encode(data, 'application/problem+json'), 'application/problem+json')).toEqual(
      data,
    );
  });

  it('decodes a body without a content type as bytes', () => {
    const decoded = registry.decode(Uint8Array.of(1, 2, 3), undefined);
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect([...(decoded as Buffer)]).toEqual([1, 2, 3]);
  });

  it('refuses an unknown content type with DecodeError on decode and PublishError on encode', () => {
    let decodeError: unknown;
    try {
      registry.decode(utf8('<a/>'), 'application/xml');
    } catch (error) {
      decodeError = error;
    }
    expect(decodeError).toBeInstanceOf(DecodeError);
    expect(decodeError).toMatchObject({ code: ErrorCode.DECODE });
    expect((decodeError as Error).message).toContain('application/xml');

    let encodeError: unknown;
    try {
      registry.encode('<a/>', 'application/xml');
    } catch (error) {
      encodeError = error;
    }
    expect(encodeError).toBeInstanceOf(PublishError);
    expect(encodeError).toMatchObject({ code: ErrorCode.ENCODE });
    expect((encodeError as Error).message).toContain('application/xml');
  });

  it('wraps a codec failure on decode in DecodeError with the cause', () => {
    const hostile = utf8('{"__proto__":{"polluted":1}}');
    let caught: unknown;
    try {
      registry.decode(hostile, JSON_CONTENT_TYPE);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DecodeError);
    expect((caught as DecodeError).code).toBe(ErrorCode.DECODE);
    expect((caught as DecodeError).message).toContain(`${hostile.byteLength} bytes`);
    expect((caught as DecodeError).cause).toBeInstanceOf(SyntaxError);
    expect(() => registry.decode(Uint8Array.of(0xff), 'text/plain')).toThrow(DecodeError);
    expect(() => registry.decode(utf8('['.repeat(10_000)), JSON_CONTENT_TYPE)).toThrow(DecodeError);
  });

  it('wraps an encode failure (BigInt, circular data, wrong type) in PublishError FERRY_ENCODE', () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular['self'] = circular;
    const cases: Array<[unknown, string]> = [
      [{ amount: 10n }, JSON_CONTENT_TYPE],
      [circular, JSON_CONTENT_TYPE],
      [{ not: 'bytes' }, BYTES_CONTENT_TYPE],
      [42, TEXT_CONTENT_TYPE],
    ];
    for (const [data, contentType] of cases) {
      let caught: unknown;
      try {
        registry.encode(data, contentType);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(PublishError);
      expect(caught).toMatchObject({ code: ErrorCode.ENCODE });
      expect((caught as PublishError).cause).toBeInstanceOf(TypeError);
    }
  });

  it('lets a custom codec replace a built-in and add a new type', () => {
    const upper: Codec = {
      contentType: 'text/plain',
      encode: (data) => utf8(String(data).toUpperCase()),
      decode: (body) => `custom:${text(body)}`,
    };
    const xml: Codec = {
      contentType: 'Application/XML',
      encode: (data) => utf8(`<v>${String(data)}</v>`),
      decode: (body) => text(body).replace(/<\/?v>/g, ''),
    };
    const custom = new CodecRegistry([upper, xml]);
    expect(text(custom.encode('hi', TEXT_CONTENT_TYPE))).toBe('HI');
    expect(custom.decode(utf8('hi'), 'text/plain; charset=utf-8')).toBe('custom:hi');
    expect(custom.find('text/csv')).toBe(upper);
    expect(custom.decode(custom.encode(5, 'application/xml; charset=utf-8'), 'application/xml')).toBe('5');
    // the other built-ins are untouched
    expect(custom.decode(custom.encode({ a: 1 }, JSON_CONTENT_TYPE), JSON_CONTENT_TYPE)).toEqual({ a: 1 });
    expect(registry.find('application/xml')).toBeUndefined();
  });

  it('uses the JSON codec it is given, for +json too', () => {
    const shallow = new CodecRegistry([], jsonCodec({ maxDepth: 1 }));
    expect(() => shallow.decode(utf8('[[1]]'), JSON_CONTENT_TYPE)).toThrow(DecodeError);
    expect(() => shallow.decode(utf8('[[1]]'), 'application/x+json')).toThrow(DecodeError);
    expect(shallow.decode(utf8('[1]'), JSON_CONTENT_TYPE)).toEqual([1]);
  });
});
