import type { ConsumeContext, ConsumeMiddleware } from '../context.js';
import { ErrorCode, FerryError } from '../errors.js';

/** Outcome of {@link IdempotencyStore.claim}. */
export type ClaimResult = 'claimed' | 'processing' | 'done';

/**
 * Remembers which message ids were handled, per subscription, so duplicates are acked without
 * calling the handler. Implementations: {@link MemoryIdempotencyStore}; a Redis one ships with
 * `@ferry/invalidation`. Operations must be atomic per key.
 */
export interface IdempotencyStore {
  /** Claim `key` for processing for `ttlMs`. `'processing'`: another handler holds it; `'done'`: already handled. */
  claim(key: string, ttlMs: number): Promise<ClaimResult>;
  /** Mark `key` handled, remembered for `ttlMs`. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Drop a claim after a failed attempt so the retry can run. */
  release(key: string): Promise<void>;
}

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /** Most keys kept; the oldest are forgotten first. Default 100000. */
  readonly maxKeys?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

/** An in-process {@link IdempotencyStore}: bounded, with per-key expiry. Not shared between processes. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, { state: 'processing' | 'done'; expires: number }>();
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  claim(key: string, ttlMs: number): Promise<ClaimResult> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.expires > now) return Promise.resolve(entry.state);
    this.#set(key, 'processing', now + ttlMs);
    return Promise.resolve('claimed');
  }

  complete(key: string, ttlMs: number): Promise<void> {
    this.#set(key, 'done', this.#now() + ttlMs);
    return Promise.resolve();
  }

  release(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  /** Number of keys held (expired ones included until evicted). */
  get size(): number {
    return this.#entries.size;
  }

  #set(key: string, state: 'processing' | 'done', expires: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { state, expires });
    while (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }
}

/** Options of {@link idempotency}. */
export interface IdempotencyOptions {
  /** Where ids are remembered. Default: a new {@link MemoryIdempotencyStore}. */
  readonly store?: IdempotencyStore;
  /** How long a handled id is remembered, ms. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a claim holds while the handler runs, ms; a copy arriving meanwhile is retried after backoff. Default 60 s. */
  readonly claimTtlMs?: number;
  /** The dedup key. Default: subscription (queue, or topic + group) and message id, so each group handles a message once. */
  readonly key?: (ctx: ConsumeContext) => string;
}

/**
 * Consume middleware that turns at-least-once into effectively-once: a message id already handled
 * by this subscription is acked without calling the handler; a failed attempt releases its claim so
 * the retry runs. A copy that arrives while another handler still holds the claim (a redelivery after
 * a dropped connection, a publisher's resend) fails its attempt with `FERRY_IN_PROGRESS` and is
 * retried after the backoff: by then the holder has finished (→ acked as done), failed (→ runs), or
 * died and its claim expired after `claimTtlMs` (→ runs). It is never acked unhandled, so a holder
 * that crashes cannot make the message disappear. Keep `claimTtlMs` above your longest handler run.
 */
export function idempotency(options: IdempotencyOptions = {}): ConsumeMiddleware {
  const store = options.store ?? new MemoryIdempotencyStore();
  const ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000;
  const claimTtlMs = options.claimTtlMs ?? 60 * 1000;
  const keyOf =
    options.key ??
    ((ctx: ConsumeContext) => {
      const s = ctx.subscription;
      // Group names may hold ':' and ids anything: the id is escaped so `#a` + `b:c` never meets `#a:b` + `c`.
      const group = s.group ?? (s.source.kind === 'topic' ? s.id : '');
      return `${s.source.kind}:${s.source.name}#${group}:${encodeURIComponent(ctx.message.id)}`;
    });
  return async (ctx, next) => {
    const key = keyOf(ctx);
    const claim = await store.claim(key, claimTtlMs);
    if (claim === 'done') return;
    if (claim === 'processing') {
      throw new FerryError(
        ErrorCode.IN_PROGRESS,
        `Message ${ctx.message.id} is being handled by another consumer of this subscription: retrying later (idempotency claim held up to claimTtlMs)`,
      );
    }
    try {
      await next();
    } catch (error) {
      await store.release(key);
      throw error;
    }
    await store.complete(key, ttlMs);
  };
}
