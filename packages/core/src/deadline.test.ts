import { describe, expect, it, vi } from 'vitest';
import { deferred, rejection } from '../test/helpers.js';
import { DEADLINE_PASSED, Deadlines } from './deadline.js';

describe('Deadlines', () => {
  it('resolves operations that finish in time and rejects the ones that do not, with the signal aborted', async () => {
    const deadlines = new Deadlines(30);
    const slow = deferred();
    let seen: AbortSignal | undefined;
    const late = deadlines.run((signal) => {
      seen = signal;
      return slow.promise;
    });
    const fast = await deadlines.run(() => Promise.resolve('ok'));
    expect(fast).toBe('ok');
    expect(await rejection(late)).toBe(DEADLINE_PASSED);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(DEADLINE_PASSED);
    slow.resolve();
  });

  it('passes an operation failure through unchanged', async () => {
    const boom = new Error('refused');
    expect(await rejection(new Deadlines(1_000).run(() => Promise.reject(boom)))).toBe(boom);
  });

  it('shares one signal among operations started together and lets a finished bucket go', async () => {
    const deadlines = new Deadlines(10_000);
    const signals: AbortSignal[] = [];
    await Promise.all(
      Array.from({ length: 100 }, () =>
        deadlines.run((signal) => {
          signals.push(signal);
          return Promise.resolve();
        }),
      ),
    );
    expect(new Set(signals).size).toBeLessThanOrEqual(2);
    expect(signals.every((s) => !s.aborted)).toBe(true);
  });

  it('reuses one bucket for sequential operations, keeps nothing of settled ones, and never aborts an idle bucket', async () => {
    vi.useFakeTimers();
    try {
      const deadlines = new Deadlines(40);
      const signals = new Set<AbortSignal>();
      for (let i = 0; i < 200; i++) {
        await deadlines.run((signal) => {
          signals.add(signal);
          return Promise.resolve(i);
        });
      }
      // 200 sequential operations within the same (frozen) millisecond share one 50 ms bucket.
      expect(signals.size).toBe(1);
      await vi.advanceTimersByTimeAsync(120); // past the bucket's deadline
      expect([...signals].some((s) => s.aborted)).toBe(false);
      // A bucket whose earlier operations settled still times out an operation that joins it later.
      expect(await deadlines.run(() => Promise.resolve('first'))).toBe('first');
      const hanging = rejection(deadlines.run(() => new Promise<never>(() => undefined)));
      await vi.advanceTimersByTimeAsync(120);
      expect(await hanging).toBe(DEADLINE_PASSED);
    } finally {
      vi.useRealTimers();
    }
  });

  it('dispose() drops idle buckets at once and keeps the ones an operation still waits on', async () => {
    const deadlines = new Deadlines(30);
    await deadlines.run(() => Promise.resolve());
    const hanging = deadlines.run(() => new Promise<never>(() => undefined));
    deadlines.dispose();
    expect(await rejection(hanging)).toBe(DEADLINE_PASSED);
  });
});
