import type { Destination, Queue, Topic } from './destination.js';
import type { Message, OutgoingMessage } from './message.js';
import type { Middleware } from './middleware/compose.js';

/** A message on its way out; middleware may change `headers` (the rest is fixed). */
export interface PublishContext {
  /** Where the message goes. */
  readonly destination: Queue | Topic;
  /** The message with its id assigned. */
  readonly message: OutgoingMessage & {
    /** The id it will be sent with (given, or generated). */
    readonly id: string;
  };
  /** Application headers to send; middleware may add or change entries (names are checked after the pipeline). */
  readonly headers: Record<string, string>;
  /** The transport's name (`memory`, `amqp`...). */
  readonly transport: string;
}

/** Who is consuming: the subscription a delivery belongs to. */
export interface SubscriptionInfo {
  /** Unique id of the subscription within this process. */
  readonly id: string;
  /** What was subscribed to (a queue or a topic pattern). */
  readonly source: Destination;
  /** The topic group, if any. */
  readonly group?: string;
  /** The transport's name. */
  readonly transport: string;
}

/** A decoded message on its way to the handler. */
export interface ConsumeContext {
  /** The decoded, validated message; middleware must not change it. */
  readonly message: Message<unknown>;
  /** The subscription it was delivered to. */
  readonly subscription: SubscriptionInfo;
}

/** Publish middleware: `(ctx, next) => ...`; the first added runs outermost. */
export type PublishMiddleware = Middleware<PublishContext>;
/** Consume middleware: `(ctx, next) => ...`; the first added runs outermost. Throwing counts as a failed attempt. */
export type ConsumeMiddleware = Middleware<ConsumeContext>;
