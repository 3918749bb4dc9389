/**
 * What a transport really guarantees on the broker it is connected to. The conformance suite reads
 * these and skips exactly the cases a `false` rules out, printing the reason.
 */
export interface Capabilities {
  /** Several consumers of one queue share its messages, each message handled by one of them. */
  readonly competingConsumers: boolean;
  /** Topic subscriptions can join a named group whose members compete for the group's copy. */
  readonly groups: boolean;
  /** Topic subscriptions accept `*` and `#` patterns. */
  readonly wildcards: boolean;
  /** A queue keeps messages published before any consumer ever subscribed to it and delivers them later. */
  readonly durableQueues: boolean;
  /**
   * Once subscribed, a queue or a topic group keeps receiving messages while all its consumers are away
   * (closed, crashed, disconnected) and delivers them when one comes back. (MQTT: persistent sessions.)
   */
  readonly durableSubscriptions: boolean;
  /** One publisher, one consumer with concurrency 1: messages arrive in publish order. */
  readonly orderedDelivery: boolean;
  /**
   * A message whose consumer died before acknowledging it (crash, lost connection) goes to another
   * consumer of the queue or group. MQTT brokers keep it in the dead member's session until that
   * member returns (eclipse-mosquitto#2662).
   */
  readonly failoverRedelivery: boolean;
  /** A redelivered message is flagged `redelivered` by the broker. */
  readonly redeliveryFlag: boolean;
  /** The broker counts deliveries of a message (feeds `attempt` after consumer crashes). */
  readonly deliveryCount: boolean;
  /** A publish that no queue receives can be detected and rejected (`FERRY_UNROUTABLE`). */
  readonly unroutableDetection: boolean;
  /** Headers travel natively (vs. inside a structured envelope in the body). */
  readonly nativeHeaders: boolean;
  /** The largest encoded message (body plus headers) the transport accepts, in bytes. */
  readonly maxMessageBytes: number;
  /** Messages whose publish was acknowledged survive a broker crash (`kill -9`). */
  readonly crashDurable: boolean;
}

/** The connection state reported by `broker.health()`. */
export type HealthStatus = 'up' | 'reconnecting' | 'down';

/** A snapshot of a broker's connection. Never contains credentials. */
export interface Health {
  /** `up`, `reconnecting` (lost, trying again; publishes wait) or `down` (closed). */
  readonly status: HealthStatus;
  /** Transport name: `memory`, `amqp`, `mqtt`, `stomp`. */
  readonly transport: string;
  /** The connection URL with its password and secret query parameters redacted. */
  readonly url: string;
  /** ISO time of the last status change. */
  readonly since: string;
  /** The last connection error, redacted. */
  readonly lastError?: {
    /** The error code, e.g. `FERRY_CONNECTION`. */
    readonly code: string;
    /** Its message, redacted. */
    readonly message: string;
  };
  /** Transport-specific details (e.g. `blocked` for a RabbitMQ memory alarm). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}
