import {
  type Broker,
  type ConnectOptions,
  type Consumer,
  deadLetterQueueName,
  type Destination,
  queue,
  type Queue,
  topic,
  type Topic,
} from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { waitFor } from './helpers.js';
import type { Profile } from './profile.js';
import type {
  CaseContext,
  ConformanceFaults,
  ConformanceOptions,
  CreatedResources,
  IsolatedBroker,
  RawMessage,
} from './types.js';

/** How long closing one broker after a case may take before the case fails, ms. */
const CLOSE_TIMEOUT_MS = 15_000;

/** The context of one case run: tracks what it opens and creates, and cleans up after it. @internal */
export class RunContext implements CaseContext {
  readonly name: string;
  readonly capabilities;
  readonly profile: Profile;
  readonly faults: ConformanceFaults;
  readonly waitMs: number;
  readonly quietMs: number;
  readonly notes: string[] = [];
  readonly #options: ConformanceOptions;
  readonly #run = randomUUID().slice(0, 8);
  #sequence = 0;
  readonly #brokers: Broker[] = [];
  readonly #isolated: IsolatedBroker[] = [];
  readonly #queues = new Set<string>();
  readonly #subscriptions = new Map<string, { topic: string; group?: string }>();

  constructor(options: ConformanceOptions, profile: Profile) {
    this.#options = options;
    this.profile = profile;
    this.name = options.name;
    this.capabilities = options.capabilities;
    this.faults = options.faults ?? {};
    this.waitMs = (profile.full ? 60_000 : 15_000) * profile.timeoutFactor;
    this.quietMs = 150 * Math.min(profile.timeoutFactor, 2);
  }

  count(short: number, full: number): number {
    return this.profile.full ? full : short;
  }

  async connect(options?: ConnectOptions): Promise<Broker> {
    const broker = await this.#options.connect(options);
    this.#brokers.push(broker);
    return this.#track(broker);
  }

  async isolated(options?: ConnectOptions): Promise<IsolatedBroker> {
    const make = this.faults.isolated;
    if (make === undefined) throw new Error('this case needs the faults.isolated hook');
    const isolated = await make(options);
    this.#isolated.push(isolated);
    this.#brokers.push(isolated.broker);
    return { ...isolated, broker: this.#track(isolated.broker) };
  }

  queue(label: string): Queue {
    const name = `ferry-${label}-${this.#run}-${++this.#sequence}`;
    this.#queues.add(name);
    return queue(name);
  }

  topicBase(label: string): string {
    return `ferry.${this.#run}-${++this.#sequence}.${label}`;
  }

  topic(key: string): Topic {
    return topic(key);
  }

  group(label: string): string {
    return `${label}-${randomUUID().slice(0, 8)}`;
  }

  publishRaw(destination: Destination, message: RawMessage): Promise<void> {
    if (destination.kind === 'queue') this.#queues.add(destination.name);
    return this.#options.publishRaw(destination, message);
  }

  waitFor(
    condition: () => boolean | Promise<boolean>,
    what: string | (() => string),
    timeoutMs = this.waitMs,
  ): Promise<void> {
    return waitFor(condition, timeoutMs, what);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** What the case created, for the transport's cleanup hook. */
  created(): CreatedResources {
    return { queues: [...this.#queues], subscriptions: [...this.#subscriptions.values()] };
  }

  /** Closes every broker the case opened (a close that fails or hangs fails the case), then removes what it created. */
  async dispose(): Promise<void> {
    await Promise.all(this.#isolated.map((i) => i.reconnect()));
    const results = await Promise.allSettled(
      this.#brokers.map((broker) =>
        Promise.race([
          broker.close(),
          new Promise<never>((_, reject) =>
            setTimeout(
              () => reject(new Error(`broker.close() did not finish within ${CLOSE_TIMEOUT_MS} ms`)),
              CLOSE_TIMEOUT_MS,
            ).unref(),
          ),
        ]),
      ),
    );
    await this.#options.cleanup?.(this.created());
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  #record(from: Queue | Topic, group: string | undefined): void {
    this.#queues.add(deadLetterQueueName(from, group));
    if (from.kind === 'queue') {
      this.#queues.add(from.name);
      return;
    }
    const key = `${from.name}#${group ?? ''}`;
    this.#subscriptions.set(key, group === undefined ? { topic: from.name } : { topic: from.name, group });
  }

  /** The same broker, except that its consumers report what they subscribe to. */
  #track(broker: Broker): Broker {
    const record = (from: Queue | Topic, group: string | undefined): void => this.#record(from, group);
    return new Proxy(broker, {
      get(target, property, receiver) {
        if (property === 'consumer') {
          return (...args: Parameters<Broker['consumer']>) => trackConsumer(target.consumer(...args), record);
        }
        return passThrough(target, property, receiver);
      },
    });
  }
}

function trackConsumer(consumer: Consumer, record: (from: Queue | Topic, group: string | undefined) => void): Consumer {
  return new Proxy(consumer, {
    get(target, property, receiver) {
      if (property === 'subscribe') {
        return (from: Queue | Topic, second: unknown, third?: unknown, fourth?: unknown) => {
          const options = (typeof second === 'function' ? third : fourth) as { group?: string } | undefined;
          record(from, options?.group);
          return (target.subscribe as (...a: unknown[]) => unknown)(from, second, third, fourth);
        };
      }
      return passThrough(target, property, receiver);
    },
  });
}

/** A property of the real object; methods run on it, and one that returns it (`use()`, `on()`) returns the proxy. */
function passThrough(target: object, property: string | symbol, receiver: unknown): unknown {
  const value: unknown = Reflect.get(target, property, target);
  if (typeof value !== 'function') return value;
  return (...args: unknown[]) => {
    const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
    return result === target ? receiver : result;
  };
}
