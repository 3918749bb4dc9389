import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  ConfigurationError,
  ConnectionError,
  DecodeError,
  ErrorCode,
  FerryError,
  PermanentError,
  PublishError,
  UnsupportedError,
  ValidationError,
  isPermanent,
  toFerryError,
} from './errors.js';

describe('ErrorCode', () => {
  it('holds unique FERRY_ strings', () => {
    const codes = Object.values(ErrorCode);
    expect(codes.length).toBeGreaterThan(15);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^FERRY_[A-Z_]+$/);
  });

  it('derives each code from its key', () => {
    for (const [key, code] of Object.entries(ErrorCode)) expect(code).toBe(`FERRY_${key}`);
  });
});

describe('FerryError', () => {
  it('carries code, message, name and cause', () => {
    const cause = new Error('socket hang up');
    const error = new FerryError(ErrorCode.CONNECTION, 'lost it', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('FerryError');
    expect(error.code).toBe('FERRY_CONNECTION');
    expect(error.message).toBe('lost it');
    expect(error.cause).toBe(cause);
    expect(error.stack).toContain('lost it');
  });

  it('has no own cause when none is given', () => {
    const error = new FerryError(ErrorCode.CLOSED, 'x');
    expect(Object.hasOwn(error, 'cause')).toBe(false);
    expect(error.cause).toBeUndefined();
  });

  it('keeps a falsy cause', () => {
    expect(new FerryError(ErrorCode.CLOSED, 'x', { cause: 0 }).cause).toBe(0);
    expect(new FerryError(ErrorCode.CLOSED, 'x', { cause: null }).cause).toBeNull();
  });

  it('serialises name, code and message with toJSON, never the cause', () => {
    const error = new ConnectionError('down', { cause: new Error('secret detail') });
    expect(error.toJSON()).toEqual({ name: 'ConnectionError', code: 'FERRY_CONNECTION', message: 'down' });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: 'ConnectionError',
      code: 'FERRY_CONNECTION',
      message: 'down',
    });
  });
});

describe('subclasses', () => {
  const cause = new Error('root');
  it.each([
    ['ConfigurationError', new ConfigurationError('m', { cause }), ErrorCode.CONFIGURATION, ConfigurationError],
    ['ConnectionError', new ConnectionError('m', { cause }), ErrorCode.CONNECTION, ConnectionError],
    [
      'PublishError',
      new PublishError(ErrorCode.PUBLISH_TIMEOUT, 'm', { cause }),
      ErrorCode.PUBLISH_TIMEOUT,
      PublishError,
    ],
    ['ValidationError', new ValidationError('m', [], { cause }), ErrorCode.VALIDATION, ValidationError],
    ['DecodeError', new DecodeError('m', { cause }), ErrorCode.DECODE, DecodeError],
    ['UnsupportedError', new UnsupportedError('m', { cause }), ErrorCode.UNSUPPORTED, UnsupportedError],
    ['PermanentError', new PermanentError('m', { cause }), ErrorCode.PERMANENT, PermanentError],
  ] as const)('%s sets name, code and cause', (name, error, code, type) => {
    expect(error).toBeInstanceOf(type);
    expect(error).toBeInstanceOf(FerryError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.message).toBe('m');
    expect(error.cause).toBe(cause);
    expect(error.toJSON()).toEqual({ name, code, message: 'm' });
    expect(String(error)).toBe(`${name}: m`);
  });

  it('ConfigurationError takes a more precise code', () => {
    const error = new ConfigurationError('bad header', { code: ErrorCode.INVALID_HEADER });
    expect(error.code).toBe(ErrorCode.INVALID_HEADER);
    expect(error.name).toBe('ConfigurationError');
  });

  it('ClosedError names what was closed and says what to do', () => {
    const error = new ClosedError('Producer');
    expect(error.name).toBe('ClosedError');
    expect(error.code).toBe(ErrorCode.CLOSED);
    expect(error.message).toMatch(/^Producer is closed: create a new one/);
  });

  it('ValidationError keeps the issues with their paths', () => {
    const issues = [{ message: 'Required', path: ['order', 0, 'sku'] }, { message: 'Too small' }];
    const error = new ValidationError('invalid', issues);
    expect(error.issues).toEqual(issues);
    expect(new ValidationError('invalid').issues).toEqual([]);
  });

  it('PublishError accepts each of its codes', () => {
    for (const code of [
      ErrorCode.PUBLISH_REJECTED,
      ErrorCode.PUBLISH_TIMEOUT,
      ErrorCode.UNROUTABLE,
      ErrorCode.OVERFLOW,
      ErrorCode.MESSAGE_TOO_LARGE,
      ErrorCode.ENCODE,
    ] as const) {
      expect(new PublishError(code, 'x').code).toBe(code);
    }
  });
});

describe('isPermanent', () => {
  it.each([
    new PermanentError('no such order'),
    new ValidationError('bad'),
    new DecodeError('bad bytes'),
    new PublishError(ErrorCode.MESSAGE_TOO_LARGE, 'big'),
    new FerryError(ErrorCode.MAX_ATTEMPTS, 'too many'),
    new ConfigurationError('bad option'),
  ])('is true for %s', (error) => {
    expect(isPermanent(error)).toBe(true);
  });

  it.each([
    new ConnectionError('down'),
    new PublishError(ErrorCode.PUBLISH_TIMEOUT, 'slow'),
    new FerryError(ErrorCode.HANDLER_FAILED, 'threw'),
    new FerryError(ErrorCode.HANDLER_TIMEOUT, 'slow'),
    new ClosedError('Consumer'),
    new Error('plain'),
    'a string',
    undefined,
    null,
    { code: ErrorCode.PERMANENT },
  ])('is false for %s', (error) => {
    expect(isPermanent(error)).toBe(false);
  });
});

describe('toFerryError', () => {
  it('keeps a FerryError as it is', () => {
    const error = new DecodeError('bad');
    expect(toFerryError(error)).toBe(error);
    expect(toFerryError(error, ErrorCode.CONNECTION)).toBe(error);
  });

  it('wraps an Error once, with its message and as the cause', () => {
    const cause = new TypeError('x is not a function');
    const wrapped = toFerryError(cause);
    expect(wrapped).toBeInstanceOf(FerryError);
    expect(wrapped.code).toBe(ErrorCode.HANDLER_FAILED);
    expect(wrapped.message).toBe('x is not a function');
    expect(wrapped.cause).toBe(cause);
    expect(toFerryError(wrapped)).toBe(wrapped);
  });

  it('uses the code it is given', () => {
    expect(toFerryError(new Error('econnreset'), ErrorCode.CONNECTION).code).toBe(ErrorCode.CONNECTION);
  });

  it('wraps values that are not errors', () => {
    const fromString = toFerryError('boom');
    expect(fromString.message).toBe('boom');
    expect(fromString.cause).toBe('boom');
    expect(toFerryError(42).message).toBe('42');
    expect(toFerryError(undefined).message).toBe('undefined');
    expect(toFerryError(null).message).toBe('null');
  });
});
