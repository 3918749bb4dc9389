import type { Destination } from '../destination.js';
import { ErrorCode, PublishError } from '../errors.js';
import type { Envelope } from '../message.js';
import type { Delivery } from '../transport.js';
import { Fifo } from './fifo.js';

/** A message held by a memory queue. @internal */
export interface MemoryItem {
  readonly envelope: Envelope;
  readonly destination: Destination;
  redelivered: boolean;
  deliveries: number;
}

/** A consumer attached to a memory queue. @internal */
export interface MemoryConsumer {
  readonly id: string;
  /** The transport (connection) it belongs to: its unacked messages are requeued when it drops. */
  readonly owner: object;
  readonly concurrency: number;
  readonly deliver: (delivery: Delivery) => Promise<void>;
  inFlight: number;
}

interface Unacked {
  readonly item: MemoryItem;
  readonly consumer: MemoryConsumer;
}

/**
 * One in-process queue with AMQP-like semantics: FIFO, round-robin among consumers, at most
 * `concurrency` unacked per consumer, requeue with the redelivered flag, a bounded length. @internal
 */
export class MemoryQueue {
  readonly #ready = new Fifo<MemoryItem>();
  readonly #unacked = new Map<number, Unacked>();
  readonly #consumers: MemoryConsumer[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #next = 0;
  #tag = 0;
  #holdProcess = true;
  #scheduled = false;

  constructor(
    readonly name: string,
    readonly maxLength: number,
    /** Deleted when its last consumer leaves (private topic subscriptions). */
    readonly autoDelete: boolean,
    private readonly onEmptyAutoDelete: (queue: MemoryQueue) => void,
  ) {}

  /** Messages waiting for a consumer. */
  get ready(): number {
    return this.#ready.length;
  }

  /** Messages delivered and not yet settled. */
  get unacked(): number {
    return this.#unacked.size;
  }

  get consumerCount(): number {
    return this.#consumers.length;
  }

  /** @throws PublishError `FERRY_OVERFLOW` when `maxLength` messages are waiting (and `force` is off). */
  enqueue(item: MemoryItem, force = false): void {
    if (!force) this.assertRoom();
    this.#ready.push(item);
    this.#schedule();
  }

  /** @throws PublishError `FERRY_OVERFLOW` when `maxLength` messages are waiting. */
  assertRoom(): void {
    if (this.#ready.length >= this.maxLength) {
      throw new PublishError(
        ErrorCode.OVERFLOW,
        `Memory queue "${this.name}" holds its maximum of ${this.maxLength} messages: consume faster or raise maxQueueLength`,
      );
    }
  }

  addConsumer(consumer: MemoryConsumer): void {
    this.#consumers.push(consumer);
    this.#schedule();
  }

  /** Stops deliveries to a consumer; its unacked messages stay settleable. */
  removeConsumer(id: string): void {
    const index = this.#consumers.findIndex((c) => c.id === id);
    if (index >= 0) this.#consumers.splice(index, 1);
    if (this.autoDelete && this.#consumers.length === 0) this.onEmptyAutoDelete(this);
  }

  /** Puts back every unacked message of `owner`'s consumers, flagged redelivered (a dropped connection). */
  requeueOwner(owner: object): void {
    const back: MemoryItem[] = [];
    for (const [tag, entry] of this.#unacked) {
      if (entry.consumer.owner !== owner) continue;
      this.#unacked.delete(tag);
      entry.consumer.inFlight--;
      entry.item.redelivered = true;
      back.push(entry.item);
    }
    if (back.length > 0) this.#ready.unshift(...back);
    this.#schedule();
  }

  /**
   * Whether pending retry timers keep the process alive: yes while a broker is connected to the hub
   * (as a real broker's socket would), no once every broker closed.
   */
  holdProcess(hold: boolean): void {
    this.#holdProcess = hold;
    for (const timer of this.#timers) {
      if (hold) timer.ref();
      else timer.unref();
    }
  }

  /** Cancels retry timers and forgets everything (queue deleted). */
  destroy(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#ready.clear();
    this.#unacked.clear();
    this.#consumers.length = 0;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#ready.length > 0) {
      const consumer = this.#pickConsumer();
      if (consumer === undefined) return;
      const item = this.#ready.shift() as MemoryItem;
      item.deliveries++;
      const tag = ++this.#tag;
      consumer.inFlight++;
      this.#unacked.set(tag, { item, consumer });
      void consumer.deliver(this.#delivery(tag, item));
    }
  }

  #pickConsumer(): MemoryConsumer | undefined {
    const count = this.#consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.#consumers[(this.#next + i) % count];
      if (consumer !== undefined && consumer.inFlight < consumer.concurrency) {
        this.#next = (this.#next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  /** Removes an unacked entry; false when it was already settled or requeued by a drop. */
  #take(tag: number): Unacked | undefined {
    const entry = this.#unacked.get(tag);
    if (entry === undefined) return undefined;
    this.#unacked.delete(tag);
    entry.consumer.inFlight--;
    this.#schedule();
    return entry;
  }

  #delivery(tag: number, item: MemoryItem): Delivery {
    return {
      envelope: item.envelope,
      destination: item.destination,
      redelivered: item.redelivered,
      deliveryCount: item.deliveries,
      ack: () => {
        this.#take(tag);
        return Promise.resolve();
      },
      release: () => {
        const entry = this.#take(tag);
        if (entry !== undefined) {
          entry.item.redelivered = true;
          entry.item.deliveries--; // a give-back on shutdown is not a failed attempt
          this.#ready.unshift(entry.item);
        }
        return Promise.resolve();
      },
      retry: (envelope, delayMs) => {
        // Even when the connection dropped meanwhile (the original was requeued), the retry copy is
        // stored: a duplicate is acceptable, a lost retry is not.
        this.#take(tag);
        const copy: MemoryItem = { envelope, destination: item.destination, redelivered: false, deliveries: 0 };
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.enqueue(copy, true);
        }, delayMs);
        if (!this.#holdProcess) timer.unref();
        this.#timers.add(timer);
        return Promise.resolve();
      },
    };
  }
}
