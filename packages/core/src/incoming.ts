import type { Destination } from './destination.js';
import type { Headers, Message } from './message.js';

/**
 * A per-message abort signal created only when someone reads it: Node's `AbortController` is costly
 * (it showed as 11 % of the consume path), and most handlers never look at `message.signal`.
 * Aborting before the first read makes the signal start out aborted with the same reason. @internal
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Aborts once; later calls keep the first reason. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** The fields of a received message. @internal */
export interface MessageFields<T> {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  readonly datacontenttype: string;
  readonly subject: string | undefined;
  readonly key: string | undefined;
  readonly data: T;
  readonly headers: Headers;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly destination: Destination;
}

/** The {@link Message} handlers receive: a read-only value whose `signal` is created on first use. @internal */
export class IncomingMessage<T> implements Message<T> {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  readonly specversion = '1.0' as const;
  readonly datacontenttype: string;
  declare readonly subject?: string;
  declare readonly key?: string;
  readonly data: T;
  readonly headers: Headers;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly destination: Destination;
  readonly #abort: LazyAbort;

  constructor(fields: MessageFields<T>, abort: LazyAbort) {
    this.id = fields.id;
    this.type = fields.type;
    this.source = fields.source;
    this.time = fields.time;
    this.datacontenttype = fields.datacontenttype;
    if (fields.subject !== undefined) (this as { subject?: string }).subject = fields.subject;
    if (fields.key !== undefined) (this as { key?: string }).key = fields.key;
    this.data = fields.data;
    this.headers = fields.headers;
    this.attempt = fields.attempt;
    this.redelivered = fields.redelivered;
    this.destination = fields.destination;
    this.#abort = abort;
    Object.freeze(this);
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }
}
