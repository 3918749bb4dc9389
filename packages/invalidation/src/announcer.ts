import type { Producer, Topic } from '@ferry/core';
import { randomBytes } from 'node:crypto';
import { type Invalidation, INVALIDATION_TYPE } from './options.js';

/** What the announcer reports to its cache. */
export interface AnnouncerEvents {
  sent(): void;
  failed(keys: number, error: Error): void;
}

/**
 * Publishes a cache instance's invalidations: one after the other (so sequence numbers arrive in order),
 * each with the instance's id and its next sequence number. A failed publish queues its keys for a retry
 * with backoff, newest version per key, and gives its sequence number back.
 */
export class Announcer {
  /** This cache instance's id, the sender of its events. */
  readonly id = randomBytes(8).toString('hex');
  readonly #producer: Producer;
  readonly #topic: Topic;
  readonly #events: AnnouncerEvents;
  #sequence = 0;
  #publishing: Promise<void> = Promise.resolve();
  /** Invalidations whose publish failed, newest version per key. */
  readonly #pending = new Map<string, number>();
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(producer: Producer, topic: Topic, events: AnnouncerEvents) {
    this.#producer = producer;
    this.#topic = topic;
    this.#events = events;
  }

  /** Keys waiting for a retry. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Publishes invalidations after the L2 write; a failure queues them for a retry (newest version per key). */
  async announce(versions: ReadonlyArray<readonly [string, number]>): Promise<void> {
    if (versions.length === 0) return;
    try {
      await this.send({ k: versions });
    } catch (error) {
      for (const [key, version] of versions) {
        if ((this.#pending.get(key) ?? 0) < version) this.#pending.set(key, version);
      }
      this.#events.failed(versions.length, error as Error);
      this.#scheduleRetry(1);
    }
  }

  /** Sends one event, after the ones before it. */
  send(body: { k?: ReadonlyArray<readonly [string, number]>; c?: true }): Promise<void> {
    const sent = this.#publishing.then(async () => {
      const event: Invalidation = { s: this.id, q: ++this.#sequence, t: Date.now(), ...body };
      try {
        await this.#producer.publish(this.#topic, { type: INVALIDATION_TYPE, data: event });
      } catch (error) {
        // Its keys wait in the retry queue, so the next event may take the same number: receivers then
        // see no gap (and flush nothing) for a message whose content is sent again anyway. If this one
        // does arrive late, the repeated number is harmless: events are applied whatever their number.
        this.#sequence--;
        throw error;
      }
      this.#events.sent();
    });
    this.#publishing = sent.catch(() => undefined);
    return sent;
  }

  /** Stops retrying after one last try; waits for the publish under way. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    if (this.#pending.size > 0) await this.#retryPending().catch(() => undefined);
    await this.#publishing.catch(() => undefined);
  }

  #scheduleRetry(attempt: number): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    const delay = Math.min(100 * 2 ** (attempt - 1), 5_000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#retryPending().then(
        () => undefined,
        () => this.#scheduleRetry(attempt + 1),
      );
    }, delay);
    this.#retryTimer.unref();
  }

  async #retryPending(): Promise<void> {
    const versions = [...this.#pending.entries()];
    if (versions.length === 0) return;
    await this.send({ k: versions });
    for (const [key, version] of versions) {
      if (this.#pending.get(key) === version) this.#pending.delete(key);
    }
  }
}
