import { randomUUID } from 'node:crypto';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ExponentialBackoff } from './backoff.js';
import type { CodecRegistry } from './codec.js';
import type { ConsumeContext, ConsumeMiddleware, SubscriptionInfo } from './context.js';
import { processDelivery } from './delivery.js';
import type { LazyAbort } from './incoming.js';
import { publishDeadlines } from './deadline.js';
import { drain, within } from './timing.js';
import { assertGroupName, deadLetterQueueName, queue, type Queue, type Topic } from './destination.js';
import { ClosedError, ConfigurationError, ErrorCode, type FerryError, UnsupportedError } from './errors.js';
import { type EventContract, type Infer, isEventContract } from './event.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import { compose } from './middleware/compose.js';
import { positiveInteger, resolveRetry, type RetryOptions, type SubscribeOptions } from './options.js';
import type { Redactor } from './redact.js';
import type { Transport, TransportSubscription } from './transport.js';

/** Handles one message: return (or resolve) → ack; throw → retry policy → dead letter. */
export type Handler<T> = (message: Message<T>) => Promise<void> | void;

/** A live subscription. */
export interface Subscription {
  /** Stops this subscription only: no new deliveries, in-flight handlers finish. Idempotent. */
  close(): Promise<void>;
}

/** Consumes messages. Obtain one from `broker.consumer()`. */
export interface Consumer {
  /** Subscribes a handler; resolves once the broker delivers. */
  subscribe<T = unknown>(from: Queue | Topic, handler: Handler<T>, options?: SubscribeOptions): Promise<Subscription>;
  /** Subscribes with an event contract: other types and schema-invalid data go to the dead letter, the handler's `data` is typed. */
  subscribe<S extends StandardSchemaV1>(
    from: Queue | Topic,
    contract: EventContract<S>,
    handler: Handler<Infer<S>>,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Adds consume middleware (innermost so far) for the subscriptions made after this call. */
  use(middleware: ConsumeMiddleware): this;
  /** Stops taking messages, lets in-flight handlers finish (up to `closeTimeoutMs`), then resolves. Idempotent. */
  close(): Promise<void>;
}

/** What a consumer needs from its broker. @internal */
export interface ConsumerDeps {
  readonly transport: Transport;
  readonly codecs: CodecRegistry;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly middleware: readonly ConsumeMiddleware[];
  readonly retry: ReadonlyArray<RetryOptions | undefined>;
  readonly maxMessageBytes: number;
  readonly publishTimeout: number;
  readonly closeTimeoutMs: number;
  readonly onError: (error: FerryError) => void;
}

/** The consumer core builds on any transport. @internal */
export class FerryConsumer implements Consumer {
  readonly #deps: ConsumerDeps;
  readonly #middleware: ConsumeMiddleware[];
  readonly #subscriptions = new Set<FerrySubscription>();
  /** Subscribes still talking to the broker: `close()` waits for them, so no subscription outlives it. */
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(deps: ConsumerDeps) {
    this.#deps = deps;
    this.#middleware = [...deps.middleware];
  }

  use(middleware: ConsumeMiddleware): this {
    if (typeof middleware !== 'function')
      throw new ConfigurationError('use() needs a middleware function (ctx, next) => ...');
    this.#middleware.push(middleware);
    return this;
  }

  subscribe(
    from: Queue | Topic,
    second: Handler<never> | EventContract,
    third?: Handler<never> | SubscribeOptions,
    fourth?: SubscribeOptions,
  ): Promise<Subscription> {
    if (this.#closed) return Promise.reject(new ClosedError('Consumer'));
    try {
      const contract = isEventContract(second) ? second : undefined;
      const handler = (contract === undefined ? second : third) as Handler<unknown>;
      const options = ((contract === undefined ? third : fourth) ?? {}) as SubscribeOptions;
      if (typeof handler !== 'function') throw new ConfigurationError('subscribe() needs a handler function');
      const subscribing = this.#subscribe(from, contract, handler, options);
      this.#pending.add(subscribing);
      const forget = (): void => void this.#pending.delete(subscribing);
      subscribing.then(forget, forget);
      return subscribing.catch((error: unknown) => {
        throw this.#deps.redactor.error(error);
      });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async #subscribe(
    from: Queue | Topic,
    contract: EventContract | undefined,
    handler: Handler<unknown>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    const { transport } = this.#deps;
    this.#check(from, options);
    const retry = resolveRetry(...this.#deps.retry, options.retry);
    const deadLetterName = deadLetterQueueName(from, options.group);
    if (deadLetterName.length > 255) {
      throw new ConfigurationError(
        `Queue name "${from.name}" is too long for its dead-letter queue "${deadLetterName}" (255 characters at most): use a name of 251 characters or fewer`,
        { code: ErrorCode.INVALID_DESTINATION },
      );
    }
    const concurrency = positiveInteger(options.concurrency, 'concurrency', 1);
    const info: SubscriptionInfo = {
      id: randomUUID(),
      source: from,
      ...(options.group === undefined ? {} : { group: options.group }),
      transport: transport.name,
    };
    const closing = new AbortController();
    const inFlightAborts = new Set<LazyAbort>();
    const inFlight = new Set<Promise<void>>();
    const deps = {
      ...this.#deps,
      subscription: info,
      deadLetter: queue(deadLetterName),
      retry,
      backoff: new ExponentialBackoff(retry),
      deadlines: publishDeadlines(this.#deps.publishTimeout),
      handlerTimeoutMs: options.handlerTimeoutMs,
      decode: options.decode !== false,
      contract,
      pipeline: compose<ConsumeContext>([...this.#middleware], async (ctx) => handler(ctx.message)),
      closing: closing.signal,
      inFlight: inFlightAborts,
    };
    const transportSubscription = await transport.subscribe(
      from,
      { ...(options.group === undefined ? {} : { group: options.group }), concurrency, id: info.id },
      (delivery) => {
        const run = processDelivery(deps, delivery);
        inFlight.add(run);
        return run.finally(() => inFlight.delete(run));
      },
    );
    const subscription = new FerrySubscription(
      transportSubscription,
      closing,
      inFlight,
      inFlightAborts,
      this.#deps,
      () => this.#subscriptions.delete(subscription),
    );
    this.#subscriptions.add(subscription);
    if (this.#closed) {
      await subscription.close();
      throw new ClosedError('Consumer');
    }
    return subscription;
  }

  #check(from: Queue | Topic, options: SubscribeOptions): void {
    const { capabilities, name } = this.#deps.transport;
    if (typeof from !== 'object' || from === null || (from.kind !== 'queue' && from.kind !== 'topic')) {
      throw new ConfigurationError('subscribe() needs a destination made by queue(name) or topic(name)');
    }
    if (options.group !== undefined) {
      if (from.kind === 'queue') {
        throw new ConfigurationError(
          `Groups are for topics: queue "${from.name}" already shares its messages among its consumers; remove { group }`,
        );
      }
      assertGroupName(options.group);
      if (!capabilities.groups) {
        throw new UnsupportedError(
          `The ${name} transport on this broker has no subscriber groups (capabilities.groups is false)`,
        );
      }
    }
    if (from.kind === 'topic' && from.isPattern && !capabilities.wildcards) {
      throw new UnsupportedError(
        `The ${name} transport on this broker has no wildcard subscriptions (capabilities.wildcards is false)`,
      );
    }
    if (options.handlerTimeoutMs !== undefined) positiveInteger(options.handlerTimeoutMs, 'handlerTimeoutMs', 1);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#pending]);
      await Promise.all([...this.#subscriptions].map((s) => s.close()));
    })();
    return this.#closing;
  }
}

class FerrySubscription implements Subscription {
  #closing: Promise<void> | undefined;

  constructor(
    private readonly transportSubscription: TransportSubscription,
    private readonly abort: AbortController,
    private readonly inFlight: Set<Promise<void>>,
    private readonly aborts: Set<LazyAbort>,
    private readonly deps: ConsumerDeps,
    private readonly onClosed: () => void,
  ) {}

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      await this.transportSubscription.close();
    } finally {
      const reason = new ClosedError('Consumer');
      this.abort.abort(reason);
      for (const abort of this.aborts) abort.abort(reason);
      if (!(await within(drain(this.inFlight), this.deps.closeTimeoutMs))) {
        this.deps.logger.warn(
          { inFlight: this.inFlight.size, closeTimeoutMs: this.deps.closeTimeoutMs },
          'close timed out with handlers still running; their messages stay unacknowledged and will be redelivered',
        );
      }
      this.onClosed();
    }
  }
}
