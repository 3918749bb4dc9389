import type { Broker, Capabilities, ConnectOptions, Destination, Queue, Topic } from '@ferry/core';
import type { Profile } from './profile.js';

/** A message as a plain (non-Ferry) client of the protocol would publish it. */
export interface RawMessage {
  /** The body, byte for byte. */
  readonly body: Uint8Array;
  /** Headers / user properties, as is (a foreign producer may set `ferry-*` or `ce-*` ones). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The protocol's content type, if any. */
  readonly contentType?: string;
}

/** A broker whose connection alone can be taken down and brought back (e.g. through its own {@link FaultProxy}). */
export interface IsolatedBroker {
  /** The connected broker; the suite closes it after the case (closing it should also release its proxy). */
  readonly broker: Broker;
  /** Cuts this broker's connections and keeps them down (refused) until `reconnect()`. */
  disconnect(): Promise<void>;
  /** Lets this broker connect again. */
  reconnect(): Promise<void>;
}

/**
 * Fault hooks a transport supplies so the same cases also prove recovery. Each is optional; a case
 * that needs a missing hook is skipped and says which hook. Hooks that touch a shared broker (stop,
 * start) must only be supplied where nothing else uses that broker meanwhile.
 */
export interface ConformanceFaults {
  /** Cuts every connection of the brokers `connect()` made (e.g. `rabbitmqctl close_all_connections`, a fault proxy's `cut()`); they reconnect on their own. Resolves once cut. */
  readonly dropConnections?: () => Promise<void>;
  /** Makes the broker unreachable (stopped, or refused by a proxy) until `startBroker()`. Resolves once it is down. */
  readonly stopBroker?: () => Promise<void>;
  /** Brings the broker back after `stopBroker()`. Resolves once it accepts connections again. */
  readonly startBroker?: () => Promise<void>;
  /** Connects a broker on a connection that `disconnect()` takes down without touching the others. */
  readonly isolated?: (options?: ConnectOptions) => Promise<IsolatedBroker>;
}

/** What the suite created on the broker, handed to {@link ConformanceOptions.cleanup} after each case. */
export interface CreatedResources {
  /** Queue names: the queues used and every dead-letter queue a subscription could have written to. */
  readonly queues: readonly string[];
  /** Topic subscriptions made (pattern and group): the transport removes the queues it declared for them. */
  readonly subscriptions: ReadonlyArray<{
    /** The topic pattern subscribed to. */
    readonly topic: string;
    /** The group; absent for a private subscription. */
    readonly group?: string;
  }>;
}

/** Names of the capabilities that can rule a case out. */
export type CapabilityFlag = {
  [K in keyof Capabilities]: Capabilities[K] extends boolean ? K : never;
}[keyof Capabilities];

/** Arguments of {@link describeConformance}. */
export interface ConformanceOptions {
  /** Shown in test names, e.g. `amqp (RabbitMQ 3.10)`. */
  readonly name: string;
  /** Opens a new connection to the broker under test; each call is a separate client (an "instance"). */
  readonly connect: (options?: ConnectOptions) => Promise<Broker>;
  /** The capabilities the transport declares; the suite asserts `broker.capabilities` equals them. */
  readonly capabilities: Capabilities;
  /** Why a capability is `false` on this broker, printed with every case it rules out. */
  readonly reasons?: Partial<Record<CapabilityFlag, string>>;
  /** Publishes as a plain client of the protocol would (no Ferry envelope), for foreign and hostile input. */
  readonly publishRaw: (destination: Destination, message: RawMessage) => Promise<void>;
  /** Removes what a case created (queues, group queues, dead-letter queues); called after each case. */
  readonly cleanup?: (created: CreatedResources) => Promise<void>;
  /** Fault hooks for the recovery cases. */
  readonly faults?: ConformanceFaults;
  /**
   * Registers only part of the suite: `shared` (the cases that may run beside other tests) or `exclusive`
   * (the fault cases that stop or cut every connection: put them in a test file that runs alone). Default: all.
   */
  readonly only?: 'shared' | 'exclusive';
  /** Overrides the profile chosen by `FERRY_CONFORMANCE` (`short`, `full`, `stress`). */
  readonly profile?: Profile['name'];
}

/** What a case gets to work with. Every broker it connects and every name it makes are cleaned up after it. */
export interface CaseContext {
  /** The suite's name (`ConformanceOptions.name`). */
  readonly name: string;
  /** The capabilities the transport declares (`ConformanceOptions.capabilities`). */
  readonly capabilities: Capabilities;
  /** The profile of this run. */
  readonly profile: Profile;
  /** The fault hooks the transport supplied (empty when none). */
  readonly faults: ConformanceFaults;
  /** `short` in the short profile, `full` in the full one. */
  count(short: number, full: number): number;
  /** How long a case may wait for something that must happen, ms (scaled by the profile). */
  readonly waitMs: number;
  /** How long a case watches for something that must not happen, ms. */
  readonly quietMs: number;
  /** A new broker connection, closed after the case. */
  connect(options?: ConnectOptions): Promise<Broker>;
  /** A broker on its own cuttable connection (needs `faults.isolated`), closed after the case. */
  isolated(options?: ConnectOptions): Promise<IsolatedBroker>;
  /** A queue with a unique name, removed (with its dead-letter queue) after the case. */
  queue(label: string): Queue;
  /** A unique topic prefix (`ferry.<run>.<label>`): build keys and patterns under it. */
  topicBase(label: string): string;
  /** `topic(key)`, for symmetry with `queue()`. */
  topic(key: string): Topic;
  /** A unique group name. */
  group(label: string): string;
  /** Publishes as a plain protocol client would. */
  publishRaw(destination: Destination, message: RawMessage): Promise<void>;
  /** Polls until `condition` holds, at most `timeoutMs` (default `waitMs`); `what` may be a function, called at the timeout. */
  waitFor(
    condition: () => boolean | Promise<boolean>,
    what: string | (() => string),
    timeoutMs?: number,
  ): Promise<void>;
  /** Records a measured fact, printed after the case (e.g. duplicates seen, time to recover). */
  note(text: string): void;
}

/** One conformance case. */
export interface ConformanceCase {
  /** Stable id, e.g. `14b`: the number of the case in docs/conformance.md. */
  readonly id: string;
  /** What it proves, as a sentence. */
  readonly title: string;
  /** Capabilities that must be `true` for the case to run. */
  readonly requires?: readonly CapabilityFlag[];
  /** A custom applicability rule (e.g. a minimum `maxMessageBytes`): returns why it does not apply, or `undefined`. */
  readonly skipUnless?: (capabilities: Capabilities) => string | undefined;
  /** Fault hooks the case needs. */
  readonly hooks?: ReadonlyArray<keyof ConformanceFaults>;
  /** Affects every connection to the broker (stop, drop all): run alone, never alongside other cases. */
  readonly exclusive?: boolean;
  /** The case itself: throws (an `expect` failure) when the transport breaks the contract. */
  readonly run: (ctx: CaseContext) => Promise<void>;
}
