import { randomUUID } from 'node:crypto';
import type { Capabilities, HealthStatus } from '../capabilities.js';
import type { Destination } from '../destination.js';
import { Emitter } from '../emitter.js';
import { ClosedError, ConfigurationError, ConnectionError } from '../errors.js';
import type { Envelope } from '../message.js';
import type {
  Delivery,
  Transport,
  TransportContext,
  TransportEvents,
  TransportPublishOptions,
  TransportSubscribeOptions,
  TransportSubscription,
} from '../transport.js';
import { abortable } from '../link.js';
import { DEFAULT_MAX_QUEUE_LENGTH, type MemoryConnection, type MemoryHub, memoryHub } from './hub.js';
import type { MemoryQueue } from './queue.js';

/** What the memory transport guarantees: everything but surviving the process. */
export const MEMORY_CAPABILITIES: Capabilities = Object.freeze({
  competingConsumers: true,
  groups: true,
  wildcards: true,
  durableQueues: true,
  durableSubscriptions: true,
  orderedDelivery: true,
  redeliveryFlag: true,
  deliveryCount: true,
  unroutableDetection: true,
  nativeHeaders: true,
  maxMessageBytes: 256 * 1024 * 1024,
  crashDurable: false,
  failoverRedelivery: true,
});

interface MemorySubscription {
  /** (Re)declares the queue and its binding, as a broker client does after a reconnect. */
  readonly open: () => MemoryQueue;
  queue: MemoryQueue;
  readonly consumerId: string;
  readonly concurrency: number;
  readonly deliver: (delivery: Delivery) => Promise<void>;
}

/**
 * `memory://[hub][?maxQueueLength=N]`: the in-process transport. Each broker is one "connection" to a
 * hub; brokers on the same hub share queues and topics.
 */
export class MemoryTransport extends Emitter<TransportEvents> implements Transport, MemoryConnection {
  readonly name = 'memory';
  readonly capabilities = MEMORY_CAPABILITIES;
  readonly hub: MemoryHub;
  readonly #maxQueueLength: number;
  readonly #subscriptions = new Set<MemorySubscription>();
  #status: HealthStatus = 'up';
  #reconnected: { promise: Promise<void>; resolve: () => void } | undefined;

  /** `ConnectOptions.connectionName`: lets `hub.dropConnections()`, `stop()` and `start()` pick this connection. */
  readonly connectionName: string | undefined;

  constructor(hub: MemoryHub, maxQueueLength: number, connectionName?: string) {
    super();
    this.hub = hub;
    this.#maxQueueLength = maxQueueLength;
    this.connectionName = connectionName;
    hub.attach(this);
  }

  status(): { status: HealthStatus } {
    return { status: this.#status };
  }

  async publish(destination: Destination, envelope: Envelope, options: TransportPublishOptions): Promise<void> {
    while (this.#status !== 'up') {
      if (this.#status === 'down') throw new ClosedError('Memory connection');
      await abortable(this.#reconnected?.promise ?? Promise.resolve(), options.signal);
    }
    const copy: Envelope = {
      attributes: Object.freeze({ ...envelope.attributes }),
      headers: Object.freeze({ ...envelope.headers }),
      body: Buffer.from(envelope.body), // a copy, as a broker's: from Node's pool, not a new ArrayBuffer
    };
    this.hub.publish(destination, copy, options.mandatory, this.#maxQueueLength);
  }

  subscribe(
    source: Destination,
    options: TransportSubscribeOptions,
    deliver: (delivery: Delivery) => Promise<void>,
  ): Promise<TransportSubscription> {
    if (this.#status === 'down') return Promise.reject(new ClosedError('Memory connection'));
    const open = (): MemoryQueue => {
      if (source.kind === 'queue') return this.hub.queue(source.name, this.#maxQueueLength);
      const queue =
        options.group === undefined
          ? this.hub.queue(`~${source.name}~${options.id}`, this.#maxQueueLength, true)
          : this.hub.queue(`~${source.name}#${options.group}`, this.#maxQueueLength);
      this.hub.bind(queue, source.name);
      return queue;
    };
    const subscription: MemorySubscription = {
      open,
      queue: open(),
      consumerId: randomUUID(),
      concurrency: options.concurrency,
      deliver,
    };
    this.#subscriptions.add(subscription);
    if (this.#status === 'up') this.#attach(subscription);
    return Promise.resolve({
      close: () => {
        if (this.#subscriptions.delete(subscription)) subscription.queue.removeConsumer(subscription.consumerId);
        return Promise.resolve();
      },
    });
  }

  simulateDrop(downMs: number | undefined): void {
    if (this.#status !== 'up') return;
    this.#status = 'reconnecting';
    let resolve = (): void => undefined;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#reconnected = { promise, resolve };
    for (const subscription of this.#subscriptions) {
      subscription.queue.requeueOwner(this);
      subscription.queue.removeConsumer(subscription.consumerId);
    }
    this.emit('disconnected', new ConnectionError('Memory hub dropped the connection (fault injection)'));
    this.emit('reconnecting', 1, downMs ?? 0);
    if (downMs !== undefined) setTimeout(() => this.simulateReturn(), downMs).unref();
  }

  simulateReturn(): void {
    if (this.#status !== 'reconnecting') return;
    this.#status = 'up';
    for (const subscription of this.#subscriptions) this.#attach(subscription);
    this.#reconnected?.resolve();
    this.emit('connected');
  }

  close(): Promise<void> {
    if (this.#status === 'down') return Promise.resolve();
    this.#status = 'down';
    this.#reconnected?.resolve();
    for (const subscription of this.#subscriptions) {
      subscription.queue.requeueOwner(this);
      subscription.queue.removeConsumer(subscription.consumerId);
    }
    this.#subscriptions.clear();
    this.hub.detach(this);
    return Promise.resolve();
  }

  #attach(subscription: MemorySubscription): void {
    subscription.queue = subscription.open();
    subscription.queue.addConsumer({
      id: subscription.consumerId,
      owner: this,
      concurrency: subscription.concurrency,
      deliver: subscription.deliver,
      inFlight: 0,
    });
  }
}

/** The factory `connect('memory://...')` uses. */
export function createMemoryTransport(context: TransportContext): Promise<Transport> {
  const { url } = context;
  const hubName = decodeURIComponent(url.hostname || url.pathname.replace(/^\/+/, '')) || 'default';
  const raw = url.searchParams.get('maxQueueLength');
  const maxQueueLength = raw === null ? DEFAULT_MAX_QUEUE_LENGTH : Number(raw);
  if (!Number.isInteger(maxQueueLength) || maxQueueLength < 1) {
    throw new ConfigurationError(`memory:// maxQueueLength must be an integer >= 1, got "${raw}"`);
  }
  return Promise.resolve(new MemoryTransport(memoryHub(hubName), maxQueueLength, context.connectionName));
}
