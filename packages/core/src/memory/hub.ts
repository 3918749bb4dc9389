import { type Destination, topicMatches } from '../destination.js';
import { ErrorCode, PublishError } from '../errors.js';
import type { Envelope } from '../message.js';
import { MemoryQueue } from './queue.js';

/** Default bound of every memory queue (messages waiting). */
export const DEFAULT_MAX_QUEUE_LENGTH = 100_000;

/** Something a hub can cut, the way a broker drops connections. @internal */
export interface MemoryConnection {
  /** `ConnectOptions.connectionName`, if any. */
  readonly connectionName: string | undefined;
  /** Drop the connection now and come back after `downMs`, or at `simulateReturn()` when `undefined`. */
  simulateDrop(downMs: number | undefined): void;
  /** Come back after a drop. */
  simulateReturn(): void;
}

/** Statistics of one memory queue. */
export interface MemoryQueueStats {
  /** Messages waiting to be delivered. */
  readonly ready: number;
  /** Messages delivered and not settled yet. */
  readonly unacked: number;
  /** Subscriptions consuming the queue. */
  readonly consumers: number;
}

/**
 * An in-process broker: queues, topic bindings and the connections attached to it. Brokers connected
 * to the same hub (`memory://<name>`) talk to each other; nothing else is shared.
 */
export class MemoryHub {
  readonly #queues = new Map<string, MemoryQueue>();
  readonly #bindings = new Map<string, { readonly pattern: string; readonly queue: MemoryQueue }>();
  readonly #connections = new Set<MemoryConnection>();
  #stopped = false;

  constructor(
    /** The hub's name (`memory://<name>`); the default hub is `default`. */
    readonly name: string,
  ) {}

  /** The queue called `name`, created on first use. @internal */
  queue(name: string, maxLength = DEFAULT_MAX_QUEUE_LENGTH, autoDelete = false): MemoryQueue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new MemoryQueue(name, maxLength, autoDelete, (q) => this.deleteQueue(q.name));
      queue.holdProcess(this.#connections.size > 0);
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Routes topic keys matching `pattern` to `queue`. @internal */
  bind(queue: MemoryQueue, pattern: string): void {
    this.#bindings.set(queue.name, { pattern, queue });
  }

  /** Deletes a queue, its binding and its messages. */
  deleteQueue(name: string): void {
    const queue = this.#queues.get(name);
    this.#queues.delete(name);
    this.#bindings.delete(name);
    queue?.destroy();
  }

  /** Stores a message: in the queue, or in every queue bound to a matching pattern. @internal */
  publish(destination: Destination, envelope: Envelope, mandatory: boolean, maxLength: number): void {
    const item = { envelope, destination, redelivered: false, deliveries: 0 };
    if (destination.kind === 'queue') {
      this.queue(destination.name, maxLength).enqueue(item);
      return;
    }
    const targets = [...this.#bindings.values()].filter((b) => topicMatches(b.pattern, destination.name));
    if (targets.length === 0 && mandatory) {
      throw new PublishError(
        ErrorCode.UNROUTABLE,
        `No subscription receives topic "${destination.name}" (mandatory publish): subscribe first, or publish without { mandatory: true }`,
      );
    }
    for (const binding of targets) binding.queue.assertRoom(); // all or nothing: no copy before every queue has room
    for (const binding of targets) binding.queue.enqueue({ ...item });
  }

  /** Counts of one queue, or `undefined` when it does not exist. Queue names: the queue's name; topic groups `~<pattern>#<group>`. */
  stats(name: string): MemoryQueueStats | undefined {
    const queue = this.#queues.get(name);
    return queue === undefined
      ? undefined
      : { ready: queue.ready, unacked: queue.unacked, consumers: queue.consumerCount };
  }

  /** Names of the queues that exist now. */
  queueNames(): string[] {
    return [...this.#queues.keys()];
  }

  /**
   * Fault injection: drops every connection attached to this hub (or only those connected with
   * `ConnectOptions.connectionName === connectionName`), as a broker restart would. Unacked messages are
   * requeued with the redelivered flag; brokers report `disconnected`, publishes wait, and after `downMs`
   * they reconnect and resume their subscriptions.
   */
  dropConnections(downMs = 50, connectionName?: string): void {
    for (const connection of this.#select(connectionName)) connection.simulateDrop(downMs);
  }

  /**
   * Fault injection: the broker goes away until `start()`. Every connection (or only the named one)
   * drops as in `dropConnections()` and stays down; without a name, brokers that connect meanwhile start
   * down too. Publishes wait up to their `publishTimeout`.
   */
  stop(connectionName?: string): void {
    if (connectionName === undefined) this.#stopped = true;
    for (const connection of this.#select(connectionName)) connection.simulateDrop(undefined);
  }

  /** Ends a `stop()`: the connections come back and resume their subscriptions; waiting publishes go out. */
  start(connectionName?: string): void {
    if (connectionName === undefined) this.#stopped = false;
    for (const connection of this.#select(connectionName)) connection.simulateReturn();
  }

  /** True between `stop()` and `start()`. */
  get stopped(): boolean {
    return this.#stopped;
  }

  #select(connectionName: string | undefined): MemoryConnection[] {
    return [...this.#connections].filter((c) => connectionName === undefined || c.connectionName === connectionName);
  }

  /** @internal */
  attach(connection: MemoryConnection): void {
    this.#connections.add(connection);
    if (this.#connections.size === 1) for (const queue of this.#queues.values()) queue.holdProcess(true);
    if (this.#stopped) connection.simulateDrop(undefined);
  }

  /** @internal */
  detach(connection: MemoryConnection): void {
    this.#connections.delete(connection);
    if (this.#connections.size === 0) for (const queue of this.#queues.values()) queue.holdProcess(false);
  }
}

const hubs = new Map<string, MemoryHub>();

/**
 * The hub behind `memory://<name>` (`memory://` is the hub named `default`). DESIGN.md: one process-wide
 * default hub plus named hubs; brokers on one hub talk to each other.
 */
export function memoryHub(name = 'default'): MemoryHub {
  let hub = hubs.get(name);
  if (hub === undefined) hubs.set(name, (hub = new MemoryHub(name)));
  return hub;
}

/** Forgets a named hub and all its queues (tests). Brokers still attached keep the old hub. */
export function deleteMemoryHub(name: string): void {
  hubs.delete(name);
}
