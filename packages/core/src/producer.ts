import { randomUUID } from 'node:crypto';
import type { CodecRegistry } from './codec.js';
import type { PublishContext, PublishMiddleware } from './context.js';
import { type Queue, type Topic } from './destination.js';
import { contentTypeOf, createEnvelope } from './envelope.js';
import { ClosedError, ConfigurationError, ErrorCode, FerryError, PublishError } from './errors.js';
import { contractOf, validate } from './event.js';
import { assertApplicationHeaders } from './headers.js';
import type { OutgoingMessage } from './message.js';
import { compose } from './middleware/compose.js';
import type { Redactor } from './redact.js';
import type { Transport } from './transport.js';
import { exceedsSize } from './size.js';
import { type Deadlines, publishDeadlines } from './deadline.js';

/** Publishes messages. Obtain one from `broker.producer()`. */
export interface Producer {
  /**
   * Publishes one message. Resolves only when the broker has taken responsibility for it (publisher
   * confirm, PUBACK, RECEIPT); rejects with a typed error otherwise: `ValidationError` (nothing sent),
   * `PublishError` (`FERRY_PUBLISH_TIMEOUT`, `FERRY_UNROUTABLE`, `FERRY_MESSAGE_TOO_LARGE`, ...),
   * `ConfigurationError`, `ClosedError`.
   */
  publish<T>(to: Queue | Topic, message: OutgoingMessage<T>): Promise<void>;
  /** Adds publish middleware (innermost so far) for the publishes that follow. */
  use(middleware: PublishMiddleware): this;
  /** Waits for every pending publish to settle, then rejects new ones with `ClosedError`. Idempotent. */
  close(): Promise<void>;
}

/** What a producer needs from its broker. @internal */
export interface ProducerDeps {
  readonly transport: Transport;
  readonly codecs: CodecRegistry;
  readonly redactor: Redactor;
  readonly source: string;
  readonly publishTimeout: number;
  readonly maxMessageBytes: number;
  /** Most publishes awaiting the broker at once; past it `FERRY_OVERFLOW`. */
  readonly maxPendingPublishes: number;
  readonly middleware: readonly PublishMiddleware[];
}

/** The producer core builds on any transport. @internal */
export class FerryProducer implements Producer {
  readonly #deps: ProducerDeps;
  readonly #middleware: PublishMiddleware[];
  #pipeline: (ctx: PublishContext) => Promise<void>;
  /** Publishes not yet settled (for `maxPendingPublishes` and `close()`). */
  #pendingCount = 0;
  #idle: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;
  readonly #deadlines: Deadlines;
  #closed = false;

  constructor(deps: ProducerDeps) {
    this.#deps = deps;
    this.#middleware = [...deps.middleware];
    this.#deadlines = publishDeadlines(deps.publishTimeout);
    this.#pipeline = compose(this.#middleware, (ctx) => this.#send(ctx));
  }

  use(middleware: PublishMiddleware): this {
    if (typeof middleware !== 'function')
      throw new ConfigurationError('use() needs a middleware function (ctx, next) => ...');
    this.#middleware.push(middleware);
    this.#pipeline = compose([...this.#middleware], (ctx) => this.#send(ctx));
    return this;
  }

  publish<T>(to: Queue | Topic, message: OutgoingMessage<T>): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('Producer'));
    if (this.#pendingCount >= this.#deps.maxPendingPublishes) {
      return Promise.reject(
        new PublishError(
          ErrorCode.OVERFLOW,
          `${this.#pendingCount} publishes are already waiting for the broker (maxPendingPublishes): await your publishes, or raise the limit`,
        ),
      );
    }
    this.#pendingCount++;
    const run = this.#publish(to, message);
    run.then(this.#settled, this.#settled);
    return run;
  }

  /** One publish settled: counted down, and `close()` woken when it was the last. */
  readonly #settled = (): void => {
    if (--this.#pendingCount === 0 && this.#idle !== undefined) {
      this.#idle.resolve();
      this.#idle = undefined;
    }
  };

  #publish(to: Queue | Topic, message: OutgoingMessage): Promise<void> {
    let running: Promise<void>;
    try {
      running = this.#pipeline(this.#context(to, message));
    } catch (error) {
      running = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return running.then(undefined, this.#redact);
  }

  readonly #redact = (error: unknown): never => {
    throw this.#deps.redactor.error(error);
  };

  #context(to: Queue | Topic, message: OutgoingMessage): PublishContext {
    if (typeof to !== 'object' || to === null || (to.kind !== 'queue' && to.kind !== 'topic')) {
      throw new ConfigurationError('publish() needs a destination made by queue(name) or topic(name)');
    }
    if (to.kind === 'topic' && to.isPattern) {
      throw new ConfigurationError(
        `Cannot publish to the pattern "${to.name}": publish to a concrete routing key (no '*' or '#'); patterns are for subscribing`,
        { code: ErrorCode.INVALID_DESTINATION },
      );
    }
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string' || message.type === '') {
      throw new ConfigurationError(
        'publish() needs a message with a non-empty string "type", e.g. { type: "order.placed", data }',
      );
    }
    if (message.headers !== undefined) assertApplicationHeaders(message.headers);
    return {
      destination: to,
      message: { ...message, id: message.id ?? randomUUID() },
      headers: { ...message.headers },
      transport: this.#deps.transport.name,
    };
  }

  /** The innermost step: validate against a contract (if any), encode, check the size, hand to the transport. */
  #send(ctx: PublishContext): Promise<void> {
    assertApplicationHeaders(ctx.headers);
    const contract = contractOf(ctx.message);
    if (contract !== undefined) {
      return validate(contract.schema, contract.type, ctx.message.data).then((data) => this.#transmit(ctx, data));
    }
    return this.#transmit(ctx, ctx.message.data);
  }

  #transmit(ctx: PublishContext, data: unknown): Promise<void> {
    const { codecs, maxMessageBytes, transport } = this.#deps;
    const contentType = contentTypeOf(ctx.message);
    const body = codecs.encode(data, contentType);
    const envelope = createEnvelope(ctx.message, body, contentType, this.#deps.source, ctx.headers);
    const size = exceedsSize(maxMessageBytes, envelope.body, envelope.headers, envelope.attributes);
    if (size !== undefined) {
      throw new PublishError(
        ErrorCode.MESSAGE_TOO_LARGE,
        `Message of ${size} bytes exceeds maxMessageBytes (${maxMessageBytes}): send a reference (e.g. an object-store key) instead, or raise the limit up to the transport's capabilities.maxMessageBytes`,
      );
    }
    const mandatory = ctx.destination.kind === 'queue' || ctx.destination.options.mandatory === true;
    return this.#deadlines
      .run((signal) => transport.publish(ctx.destination, envelope, { signal, mandatory }))
      .then(undefined, rejected);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pendingCount > 0) {
      if (this.#idle === undefined) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        this.#idle = { promise, resolve };
      }
      await this.#idle.promise;
    }
    this.#deadlines.dispose();
  }
}

/** A transport's failure as the publish's error: Ferry's own errors as they are, anything else wrapped. */
function rejected(error: unknown): never {
  if (error instanceof FerryError) throw error;
  throw new PublishError(ErrorCode.PUBLISH_REJECTED, `Publish failed: ${String(error)}`, { cause: error });
}
