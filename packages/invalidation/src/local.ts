import { LRUCache } from 'lru-cache';

interface Entry {
  readonly value: unknown;
  readonly version: number;
}

/**
 * L1: an in-process LRU of versioned entries, with the two guards that keep it from holding stale data.
 * - Per key, the newest version an invalidation announced: an entry below it is evicted, and a fill
 *   below it is dropped (a load that raced with a write).
 * - An epoch, bumped by every flush: a fill whose read began before the flush is dropped.
 */
export class LocalTier {
  readonly #entries: LRUCache<string, Entry>;
  readonly #newest: LRUCache<string, number>;
  #epoch = 0;

  constructor(maxEntries: number, ttlMs: number) {
    this.#entries = new LRUCache<string, Entry>({ max: maxEntries, ttl: ttlMs, ttlAutopurge: false });
    this.#newest = new LRUCache<string, number>({ max: maxEntries * 4, ttl: ttlMs * 2 });
  }

  /** The current epoch: take it before reading L2 and hand it to {@link fill}. */
  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The newest version announced for `key` (0 when none). */
  newest(key: string): number {
    return this.#newest.get(key) ?? 0;
  }

  /** The entry for `key`, if any (counts as a use for the LRU). */
  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /** Puts a version in unless it is stale: below a newer announced version or an entry held, or read before a flush. */
  fill(key: string, version: number, value: unknown, epoch: number): void {
    if (epoch !== this.#epoch) return;
    if (this.newest(key) > version) return;
    const held = this.#entries.peek(key);
    if (held !== undefined && held.version > version) return;
    this.#entries.set(key, { value, version });
  }

  /** Applies announced versions: evicts older entries and remembers the versions. @returns entries evicted. */
  apply(versions: ReadonlyArray<readonly [string, number]>): number {
    let evicted = 0;
    for (const [key, version] of versions) {
      if (this.newest(key) < version) this.#newest.set(key, version);
      const held = this.#entries.peek(key);
      if (held !== undefined && held.version < version) {
        this.#entries.delete(key);
        evicted++;
      }
    }
    return evicted;
  }

  /** Drops everything and starts a new epoch. */
  flush(): void {
    this.#epoch++;
    this.#entries.clear();
    this.#newest.clear();
  }
}
