import { basename, extname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, ErrorCode } from './errors.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PUBLISH_TIMEOUT,
  DEFAULT_RETRY,
  defaultSource,
  positiveInteger,
  resolveRetry,
  type RetryOptions,
} from './options.js';

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('defaults', () => {
  it('match DESIGN.md', () => {
    expect(DEFAULT_RETRY).toEqual({ maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 30_000, factor: 2, jitter: 0.2 });
    expect(Object.isFrozen(DEFAULT_RETRY)).toBe(true);
    expect(DEFAULT_PUBLISH_TIMEOUT).toBe(30_000);
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(16 * 1024 * 1024);
  });
});

describe('resolveRetry', () => {
  it('returns the defaults with no layers', () => {
    expect(resolveRetry()).toEqual(DEFAULT_RETRY);
    expect(resolveRetry(undefined, undefined)).toEqual(DEFAULT_RETRY);
  });

  it('returns a fresh object, never the frozen default', () => {
    const retry = resolveRetry();
    expect(retry).not.toBe(DEFAULT_RETRY);
    expect(resolveRetry()).not.toBe(retry);
  });

  it('layers field by field, later layers winning', () => {
    const broker = { maxAttempts: 10, initialDelayMs: 1_000, jitter: 0 };
    const consumer = { initialDelayMs: 50, factor: 3 };
    const subscription = { maxAttempts: 2 };
    expect(resolveRetry(broker, consumer, subscription)).toEqual({
      maxAttempts: 2,
      initialDelayMs: 50,
      maxDelayMs: 30_000,
      factor: 3,
      jitter: 0,
    });
  });

  it('skips undefined layers and undefined fields', () => {
    const explicit = { maxAttempts: undefined, maxDelayMs: 10 } as unknown as RetryOptions; // as plain JS may pass it
    expect(resolveRetry({ maxAttempts: 3 }, undefined, explicit)).toEqual({
      ...DEFAULT_RETRY,
      maxAttempts: 3,
      maxDelayMs: 10,
    });
  });

  it('never mutates the layers', () => {
    const layer = Object.freeze({ maxAttempts: 4 });
    const other = { factor: 5 };
    resolveRetry(layer, other);
    expect(layer).toEqual({ maxAttempts: 4 });
    expect(other).toEqual({ factor: 5 });
  });

  it('accepts maxAttempts 1 (no retry)', () => {
    expect(resolveRetry({ maxAttempts: 1 }).maxAttempts).toBe(1);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3' as unknown as number])(
    'rejects maxAttempts %j with a ConfigurationError',
    (maxAttempts) => {
      const error = errorOf(() => resolveRetry({ maxAttempts }));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: ErrorCode.CONFIGURATION });
      expect((error as Error).message).toContain('maxAttempts');
    },
  );

  it('validates the merged result: a later valid layer fixes an earlier invalid one', () => {
    expect(resolveRetry({ maxAttempts: 0 }, { maxAttempts: 2 }).maxAttempts).toBe(2);
    expect(() => resolveRetry({ maxAttempts: 2 }, { maxAttempts: 0 })).toThrow(ConfigurationError);
  });
});

describe('positiveInteger', () => {
  it('returns the fallback for undefined and the value when valid', () => {
    expect(positiveInteger(undefined, 'concurrency', 1)).toBe(1);
    expect(positiveInteger(1, 'concurrency', 7)).toBe(1);
    expect(positiveInteger(64, 'concurrency', 1)).toBe(64);
  });

  it.each([0, -3, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '4' as unknown as number, null as unknown as number])(
    'rejects %j with a ConfigurationError naming the option',
    (value) => {
      const error = errorOf(() => positiveInteger(value, 'concurrency', 1));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: ErrorCode.CONFIGURATION });
      expect((error as Error).message).toMatch(/^concurrency must be an integer >= 1, got /);
    },
  );
});

describe('defaultSource', () => {
  it('uses FERRY_SOURCE when set', () => {
    expect(defaultSource({ FERRY_SOURCE: 'billing-service' })).toBe('billing-service');
    expect(defaultSource({ FERRY_SOURCE: 'urn:svc:orders' })).toBe('urn:svc:orders');
  });

  it('falls back to the main script name without extension when FERRY_SOURCE is unset or empty', () => {
    const main = process.argv[1];
    const expected = main === undefined || main === '' ? process.title || 'ferry' : basename(main, extname(main));
    expect(defaultSource({})).toBe(expected);
    expect(defaultSource({ FERRY_SOURCE: '' })).toBe(expected);
    expect(defaultSource({}).length).toBeGreaterThan(0);
    expect(defaultSource({})).not.toMatch(/[/\\]/);
  });

  it('reads process.env by default', () => {
    const saved = process.env['FERRY_SOURCE'];
    process.env['FERRY_SOURCE'] = 'from-env';
    try {
      expect(defaultSource()).toBe('from-env');
    } finally {
      if (saved === undefined) delete process.env['FERRY_SOURCE'];
      else process.env['FERRY_SOURCE'] = saved;
    }
  });
});
