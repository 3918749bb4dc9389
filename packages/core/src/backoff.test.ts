import { describe, expect, it } from 'vitest';
import { ExponentialBackoff } from './backoff.js';
import { ConfigurationError, ErrorCode } from './errors.js';

const fixed = (value: number) => (): number => value;

describe('ExponentialBackoff', () => {
  it('has documented defaults', () => {
    const backoff = new ExponentialBackoff();
    expect(backoff).toMatchObject({ initialDelayMs: 100, maxDelayMs: 30_000, factor: 2, jitter: 0.2 });
  });

  it('grows by factor per retry without jitter', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 1_000_000, factor: 2, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((retry) => backoff.delay(retry))).toEqual([100, 200, 400, 800, 1600, 3200]);
    const triple = new ExponentialBackoff({ initialDelayMs: 10, maxDelayMs: 1_000_000, factor: 3, jitter: 0 });
    expect([1, 2, 3, 4].map((retry) => triple.delay(retry))).toEqual([10, 30, 90, 270]);
  });

  it('treats retry 0, negative and fractional retries as the first, rounding down', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 100, factor: 2, jitter: 0 });
    expect(backoff.delay(0)).toBe(100);
    expect(backoff.delay(-5)).toBe(100);
    expect(backoff.delay(2.9)).toBe(200);
    expect(backoff.delay(Number.NaN)).toBe(100);
  });

  it('never exceeds maxDelayMs, even for huge retry numbers', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 5_000, factor: 2, jitter: 0 });
    expect(backoff.delay(6)).toBe(3_200);
    expect(backoff.delay(7)).toBe(5_000);
    expect(backoff.delay(50)).toBe(5_000);
    expect(backoff.delay(10_000)).toBe(5_000);
    expect(backoff.delay(Number.POSITIVE_INFINITY)).toBe(5_000);
  });

  it('caps an initial delay larger than the maximum', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 10_000, maxDelayMs: 1_000, jitter: 0 });
    expect(backoff.delay(1)).toBe(1_000);
  });

  it('factor 1 gives a constant delay', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 250, factor: 1, jitter: 0 });
    expect([1, 2, 10, 100].map((retry) => backoff.delay(retry))).toEqual([250, 250, 250, 250]);
  });

  it('a zero initial delay stays zero, even once factor^retry overflows', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 0, factor: 3, jitter: 0.5 }, fixed(1));
    for (const retry of [1, 2, 700, 5_000]) expect(backoff.delay(retry)).toBe(0);
  });

  it('a huge factor reaches the cap instead of NaN', () => {
    const backoff = new ExponentialBackoff({ initialDelayMs: 1, maxDelayMs: 2_000, factor: 1e308, jitter: 0 });
    expect(backoff.delay(3)).toBe(2_000);
    expect(backoff.delay(1_000)).toBe(2_000);
  });

  describe('jitter', () => {
    const options = { initialDelayMs: 1_000, maxDelayMs: 100_000, factor: 2, jitter: 0.2 };

    it('random 0 gives the lower bound, 1 the upper bound, 0.5 the base', () => {
      expect(new ExponentialBackoff(options, fixed(0)).delay(1)).toBe(800);
      expect(new ExponentialBackoff(options, fixed(1)).delay(1)).toBe(1_200);
      expect(new ExponentialBackoff(options, fixed(0.5)).delay(1)).toBe(1_000);
      expect(new ExponentialBackoff(options, fixed(0)).delay(3)).toBe(3_200);
      expect(new ExponentialBackoff(options, fixed(1)).delay(3)).toBe(4_800);
    });

    it('stays within ±jitter of the base for any random value', () => {
      for (let i = 0; i <= 100; i++) {
        const backoff = new ExponentialBackoff(options, fixed(i / 100));
        const delay = backoff.delay(2);
        expect(delay).toBeGreaterThanOrEqual(1_600);
        expect(delay).toBeLessThanOrEqual(2_400);
        expect(Number.isInteger(delay)).toBe(true);
      }
    });

    it('uses Math.random by default and stays within bounds', () => {
      const backoff = new ExponentialBackoff(options);
      for (let i = 0; i < 200; i++) {
        const delay = backoff.delay(1);
        expect(delay).toBeGreaterThanOrEqual(800);
        expect(delay).toBeLessThanOrEqual(1_200);
      }
    });

    it('never pushes a capped delay above the maximum', () => {
      const backoff = new ExponentialBackoff({ initialDelayMs: 1_000, maxDelayMs: 1_500, jitter: 0.5 }, fixed(1));
      expect(backoff.delay(5)).toBe(1_500);
      const low = new ExponentialBackoff({ initialDelayMs: 1_000, maxDelayMs: 1_500, jitter: 0.5 }, fixed(0));
      expect(low.delay(5)).toBe(750);
    });

    it('full jitter (1) never goes negative', () => {
      const backoff = new ExponentialBackoff({ initialDelayMs: 100, jitter: 1 }, fixed(0));
      expect(backoff.delay(1)).toBe(0);
      expect(new ExponentialBackoff({ initialDelayMs: 100, jitter: 1 }, fixed(1)).delay(1)).toBe(200);
    });

    it('jitter 0 ignores the random function', () => {
      const backoff = new ExponentialBackoff({ initialDelayMs: 100, jitter: 0 }, fixed(0));
      expect(backoff.delay(2)).toBe(200);
    });
  });

  it.each([
    ['initialDelayMs', { initialDelayMs: -1 }],
    ['initialDelayMs', { initialDelayMs: Number.NaN }],
    ['initialDelayMs', { initialDelayMs: Number.POSITIVE_INFINITY }],
    ['maxDelayMs', { maxDelayMs: -10 }],
    ['maxDelayMs', { maxDelayMs: Number.NaN }],
    ['factor', { factor: 0.5 }],
    ['factor', { factor: 0 }],
    ['factor', { factor: -2 }],
    ['factor', { factor: Number.NaN }],
    ['factor', { factor: Number.POSITIVE_INFINITY }],
    ['jitter', { jitter: -0.1 }],
    ['jitter', { jitter: 1.5 }],
    ['jitter', { jitter: Number.NaN }],
    ['initialDelayMs', { initialDelayMs: '100' as unknown as number }],
  ])('rejects an invalid %s: %j', (name, options) => {
    let caught: unknown;
    try {
      new ExponentialBackoff(options);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    expect(caught).toMatchObject({ code: ErrorCode.CONFIGURATION });
    expect((caught as Error).message).toContain(name);
  });

  it('accepts the range edges', () => {
    expect(() => new ExponentialBackoff({ initialDelayMs: 0, maxDelayMs: 0, factor: 1, jitter: 0 })).not.toThrow();
    expect(() => new ExponentialBackoff({ jitter: 1 })).not.toThrow();
    expect(new ExponentialBackoff({ initialDelayMs: 5, maxDelayMs: 0 }).delay(1)).toBe(0);
  });
});
