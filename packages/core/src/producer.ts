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
import { drain } from './timing.js';

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
  readonly #pending = new Set<Promise<unknown>>();
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
    if (this.#pending.size >= this.#deps.maxPendingPublishes) {
      return Promise.reject(
        new PublishError(
          ErrorCode.OVERFLOW,
          `${this.#pending.size} publishes are already waiting for the broker (maxPendingPublishes): await your publishes, or raise the limit`,
        ),
      );
    }
    const run = this.#publish(to, message);
    this.#pending.add(run);
    const forget = (): void => void this.#pending.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #publish(to: Queue | Topic, message: OutgoingMessage): Promise<void> {
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
    const ctx: PublishContext = {
      destination: to,
      message: { ...message, id: message.id ?? randomUUID() },
      headers: { ...message.headers },
      transport: this.#deps.transport.name,
    };
    try {
      await this.#pipeline(ctx);
    } catch (error) {
      throw this.#deps.redactor.error(error);
    }
  }

  async #send(ctx: PublishContext): Promise<void> {
    const { codecs, maxMessageBytes, transport } = this.#deps;
    assertApplicationHeaders(ctx.headers);
    const contract = contractOf(ctx.message);
    const data =
      contract === undefined ? ctx.message.data : await validate(contract.schema, contract.type, ctx.message.data);
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
    try {
      await this.#deadlines.run((signal) => transport.publish(ctx.destination, envelope, { signal, mandatory }));
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw new PublishError(ErrorCode.PUBLISH_REJECTED, `Publish failed: ${String(error)}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await drain(this.#pending);
  }
}
