import { deferred, rejection } from '../../test/helpers.js';
import { ErrorCode } from '../errors.js';
import { describe, expect, it } from 'vitest';
import type { ConsumeContext, SubscriptionInfo } from '../context.js';
import { queue, topic } from '../destination.js';
import { type ClaimResult, type IdempotencyStore, MemoryIdempotencyStore, idempotency } from './idempotency.js';

/** A controllable clock. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

/** A minimal consume context: the middleware reads only message.id and the subscription. */
function ctxFor(id: string, subscription: Partial<SubscriptionInfo> = {}): ConsumeContext {
  return {
    message: { id } as ConsumeContext['message'],
    subscription: { id: 'sub-1', source: queue('orders'), transport: 'memory', ...subscription },
  };
}

describe('MemoryIdempotencyStore', () => {
  it('claims a new key, then reports it processing, then done after complete', async () => {
    const store = new MemoryIdempotencyStore();
    expect(await store.claim('k', 1_000)).toBe('claimed');
    expect(await store.claim('k', 1_000)).toBe('processing');
    await store.complete('k', 1_000);
    expect(await store.claim('k', 1_000)).toBe('done');
    expect(await store.claim('other', 1_000)).toBe('claimed');
    expect(store.size).toBe(2);
  });

  it('release drops a claim so the key can be claimed again', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('k', 1_000);
    await store.release('k');
    expect(store.size).toBe(0);
    expect(await store.claim('k', 1_000)).toBe('claimed');
    await store.release('never-claimed');
  });

  it('a claim expires after its ttl, so a stuck handler does not block the key forever', async () => {
    const time = clock();
    const store = new MemoryIdempotencyStore({ now: time.now });
    expect(await store.claim('k', 100)).toBe('claimed');
    time.advance(99);
    expect(await store.claim('k', 100)).toBe('processing');
    time.advance(1);
    expect(await store.claim('k', 100)).toBe('claimed');
  });

  it('a completed key is remembered for its own ttl, then forgotten', async () => {
    const time = clock();
    const store = new MemoryIdempotencyStore({ now: time.now });
    await store.claim('k', 10);
    await store.complete('k', 5_000);
    time.advance(4_999);
    expect(await store.claim('k', 10)).toBe('done');
    time.advance(1);
    expect(await store.claim('k', 10)).toBe('claimed');
  });

  it('keeps at most maxKeys, forgetting the oldest first', async () => {
    const store = new MemoryIdempotencyStore({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c', 'd']) expect(await store.claim(key, 60_000)).toBe('claimed');
    expect(store.size).toBe(3);
    expect(await store.claim('a', 60_000)).toBe('claimed'); // evicted, so new again (which evicts b)
    expect(store.size).toBe(3);
    expect(await store.claim('c', 60_000)).toBe('processing');
    expect(await store.claim('d', 60_000)).toBe('processing');
    expect(await store.claim('b', 60_000)).toBe('claimed');
  });

  it('completing a key makes it the newest, so it outlives older keys', async () => {
    const store = new MemoryIdempotencyStore({ maxKeys: 2 });
    await store.claim('a', 60_000);
    await store.claim('b', 60_000);
    await store.complete('a', 60_000);
    await store.claim('c', 60_000); // evicts b, the oldest now
    expect(await store.claim('a', 60_000)).toBe('done');
    expect(await store.claim('b', 60_000)).toBe('claimed');
  });
});

describe('idempotency middleware', () => {
  it('runs the handler on the first delivery and skips a duplicate after success', async () => {
    const middleware = idempotency();
    let calls = 0;
    const next = (): Promise<void> => {
      calls++;
      return Promise.resolve();
    };
    await middleware(ctxFor('m-1'), next);
    await middleware(ctxFor('m-1'), next);
    expect(calls).toBe(1);
    await middleware(ctxFor('m-2'), next);
    expect(calls).toBe(2);
  });

  it('fails a duplicate that arrives while the first copy is being handled with FERRY_IN_PROGRESS, never acking it unhandled', async () => {
    const middleware = idempotency();
    const gate = deferred();
    let calls = 0;
    const first = middleware(ctxFor('m-1'), async () => {
      calls++;
      await gate.promise;
    });
    // the duplicate fails its attempt (so it is retried later) without waiting for the first copy
    await expect(
      middleware(ctxFor('m-1'), () => {
        calls++;
        return Promise.resolve();
      }),
    ).rejects.toMatchObject({ code: ErrorCode.IN_PROGRESS });
    expect(calls).toBe(1);
    gate.resolve();
    await first;
    // the retry of the duplicate, after the first copy finished, is acked without a second call
    await middleware(ctxFor('m-1'), () => {
      calls++;
      return Promise.resolve();
    });
    expect(calls).toBe(1);
  });

  it('releases the claim when the handler fails, so the retry runs again, then is remembered', async () => {
    const middleware = idempotency();
    const boom = new Error('handler failed');
    let calls = 0;
    const failing = (): Promise<void> => {
      calls++;
      return Promise.reject(boom);
    };
    const succeeding = (): Promise<void> => {
      calls++;
      return Promise.resolve();
    };
    expect(await rejection(Promise.resolve(middleware(ctxFor('m-1'), failing)))).toBe(boom);
    expect(await rejection(Promise.resolve(middleware(ctxFor('m-1'), failing)))).toBe(boom);
    await middleware(ctxFor('m-1'), succeeding);
    await middleware(ctxFor('m-1'), succeeding);
    expect(calls).toBe(3);
  });

  it('runs once per group of one topic, and once per private subscription', async () => {
    const middleware = idempotency();
    const handled: string[] = [];
    const source = topic('orders.*');
    const deliver = (id: string, subscription: Partial<SubscriptionInfo>, label: string): Promise<void> =>
      Promise.resolve(
        middleware(ctxFor(id, { source, ...subscription }), () => {
          handled.push(label);
          return Promise.resolve();
        }),
      );
    await deliver('m-1', { group: 'billing', id: 'sub-a' }, 'billing');
    await deliver('m-1', { group: 'shipping', id: 'sub-b' }, 'shipping');
    await deliver('m-1', { group: 'billing', id: 'sub-c' }, 'billing again'); // same group, other member
    await deliver('m-1', { id: 'private-1' }, 'private 1');
    await deliver('m-1', { id: 'private-2' }, 'private 2');
    await deliver('m-1', { id: 'private-1' }, 'private 1 again');
    expect(handled).toEqual(['billing', 'shipping', 'private 1', 'private 2']);
  });

  it('shares a queue key between competing consumers of one queue', async () => {
    const middleware = idempotency();
    let calls = 0;
    const next = (): Promise<void> => {
      calls++;
      return Promise.resolve();
    };
    await middleware(ctxFor('m-1', { id: 'consumer-a' }), next);
    await middleware(ctxFor('m-1', { id: 'consumer-b' }), next);
    expect(calls).toBe(1);
    await middleware(ctxFor('m-1', { source: queue('invoices') }), next);
    expect(calls).toBe(2);
  });

  it('keeps groups apart even when a group name and a message id both hold a colon', async () => {
    const middleware = idempotency();
    const handled: string[] = [];
    const source = topic('orders.created');
    // group "x" with id "y:42" and group "x:y" with id "42" must not share a key
    await middleware(ctxFor('y:42', { source, group: 'x' }), () => {
      handled.push('x');
      return Promise.resolve();
    });
    await middleware(ctxFor('42', { source, group: 'x:y' }), () => {
      handled.push('x:y');
      return Promise.resolve();
    });
    expect(handled).toEqual(['x', 'x:y']);
  });

  it('uses the given store, ttls and key function', async () => {
    const calls: string[] = [];
    const store: IdempotencyStore = {
      claim(key, ttlMs): Promise<ClaimResult> {
        calls.push(`claim ${key} ${ttlMs}`);
        return Promise.resolve('claimed');
      },
      complete(key, ttlMs) {
        calls.push(`complete ${key} ${ttlMs}`);
        return Promise.resolve();
      },
      release(key) {
        calls.push(`release ${key}`);
        return Promise.resolve();
      },
    };
    const middleware = idempotency({ store, ttlMs: 500, claimTtlMs: 50, key: (ctx) => `custom:${ctx.message.id}` });
    await middleware(ctxFor('m-1'), () => Promise.resolve());
    await rejection(Promise.resolve(middleware(ctxFor('m-2'), () => Promise.reject(new Error('x')))));
    expect(calls).toEqual([
      'claim custom:m-1 50',
      'complete custom:m-1 500',
      'claim custom:m-2 50',
      'release custom:m-2',
    ]);
  });

  it('defaults to a 60 second claim and a 24 hour memory', async () => {
    const ttls: number[] = [];
    const store: IdempotencyStore = {
      claim: (_key, ttlMs) => (ttls.push(ttlMs), Promise.resolve('claimed')),
      complete: (_key, ttlMs) => (ttls.push(ttlMs), Promise.resolve()),
      release: () => Promise.resolve(),
    };
    await idempotency({ store })(ctxFor('m'), () => Promise.resolve());
    expect(ttls).toEqual([60 * 1000, 24 * 60 * 60 * 1000]);
  });

  it('skips the handler for a key the store reports done, and retries one reported processing', async () => {
    for (const state of ['done', 'processing'] as const) {
      const store: IdempotencyStore = {
        claim: () => Promise.resolve(state),
        complete: () => Promise.reject(new Error('must not complete')),
        release: () => Promise.reject(new Error('must not release')),
      };
      let calls = 0;
      const run = idempotency({ store })(ctxFor('m'), () => {
        calls++;
        return Promise.resolve();
      });
      if (state === 'done') await run;
      else await expect(run).rejects.toMatchObject({ code: ErrorCode.IN_PROGRESS });
      expect(calls).toBe(0);
    }
  });

  it('lets the key expire with the store clock, then handles the id again', async () => {
    const time = clock();
    const middleware = idempotency({ store: new MemoryIdempotencyStore({ now: time.now }), ttlMs: 1_000 });
    let calls = 0;
    const next = (): Promise<void> => {
      calls++;
      return Promise.resolve();
    };
    await middleware(ctxFor('m-1'), next);
    time.advance(999);
    await middleware(ctxFor('m-1'), next);
    expect(calls).toBe(1);
    time.advance(1);
    await middleware(ctxFor('m-1'), next);
    expect(calls).toBe(2);
  });
});
