import type { ConfirmChannel, Message, Options } from 'amqplib';
import { abortable, ErrorCode, InDoubtError, PublishError, resendInDoubt, type LinkState } from '@ferry/core';
import type { ManagedConnection } from './connection.js';
import { declare, type ExchangePlan, type QueuePlan } from './topology.js';

/**
 * Publishes on a confirm channel of the publishing connection. A publish resolves on the broker's ack,
 * rejects on a nack or a mandatory return, waits for `drain` when the socket buffer is full, and is sent
 * again (same message id) when its confirm was in doubt at a cut — until `signal` aborts.
 */
export class Publisher {
  readonly #connection: ManagedConnection;
  readonly #link: Pick<LinkState, 'whenUp' | 'status'>;
  #channel: Promise<ConfirmChannel> | undefined;
  /** The confirm channel while it is open and the link up: publishes skip the waits then. */
  #open: ConfirmChannel | undefined;
  #declared = new Set<string>();
  #writable: Promise<void> | undefined;
  /** Returned (unroutable) messages not yet matched with their confirm, by exchange, key and id. */
  readonly #returns = new Map<string, number>();

  /** @param link the transport's link: publishes wait until it is up (connected, subscriptions restored). */
  constructor(connection: ManagedConnection, link: Pick<LinkState, 'whenUp' | 'status'>) {
    this.#connection = connection;
    this.#link = link;
    connection.on('up', () => {
      this.#channel = undefined;
      this.#open = undefined;
      this.#declared = new Set();
    });
  }

  /** Declares (once per connection) the queues and exchanges a publish needs. */
  async ensure(plans: ReadonlyArray<QueuePlan | ExchangePlan>, signal: AbortSignal, force = false): Promise<void> {
    if (!force && this.#allDeclared(plans)) return;
    const missing = plans.filter((p) => force || !this.#declared.has(key(p)));
    if (missing.length === 0) return;
    await this.#link.whenUp(signal);
    const model = this.#connection.model;
    if (model === undefined) throw new InDoubtError('connection lost');
    await declare(model, missing);
    if (model === this.#connection.model) for (const p of missing) this.#declared.add(key(p));
  }

  #allDeclared(plans: ReadonlyArray<QueuePlan | ExchangePlan>): boolean {
    for (const plan of plans) if (!this.#declared.has(key(plan))) return false;
    return true;
  }

  /** Sends until the broker confirms it, re-sending what was in doubt. */
  async send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    signal: AbortSignal,
    plans: ReadonlyArray<QueuePlan | ExchangePlan> = [],
  ): Promise<void> {
    await resendInDoubt(
      signal,
      async () => {
        // The common case (declared, connected, channel open) without a wait on a resolved promise.
        if (!this.#allDeclared(plans)) await this.ensure(plans, signal);
        await this.#sendOnce(exchange, routingKey, content, options, signal);
      },
      // The channel closed: forget what was declared on it (an exchange may be gone) and send again.
      () => (this.#declared = new Set()),
    );
  }

  async #sendOnce(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    signal: AbortSignal,
  ): Promise<void> {
    const open = this.#open;
    const channel = open !== undefined && this.#link.status === 'up' ? open : await this.#openChannel(signal);
    while (this.#writable !== undefined) await abortable(this.#writable, signal);
    const returnKey = `${exchange}\u0000${routingKey}\u0000${options.messageId ?? ''}`;
    const confirmed = new Promise<void>((resolve, reject) => {
      const callback = (error: unknown): void => {
        const returned = this.#returns.get(returnKey) ?? 0;
        if (returned > 0 && options.mandatory === true) {
          if (returned === 1) this.#returns.delete(returnKey);
          else this.#returns.set(returnKey, returned - 1);
          // A queue deleted behind Ferry's back: declare it again on the next publish.
          if (exchange === '') this.#declared.delete(`q:${routingKey}`);
          reject(
            new PublishError(
              ErrorCode.UNROUTABLE,
              exchange === ''
                ? `No queue "${routingKey}" received the message (mandatory publish): the queue was deleted; publish again to re-create it`
                : `No queue is bound to "${routingKey}" on exchange "${exchange}" (mandatory publish): subscribe first, or publish without { mandatory: true }`,
            ),
          );
          return;
        }
        if (error === null || error === undefined) resolve();
        else if (String((error as Error).message).includes('nack')) {
          reject(
            new PublishError(
              ErrorCode.PUBLISH_REJECTED,
              'RabbitMQ refused the message (basic.nack): a queue is full with overflow reject-publish, or a queue process failed',
            ),
          );
        } else reject(new InDoubtError('channel closed before the confirm'));
      };
      try {
        const ok = channel.publish(exchange, routingKey, content, options, callback);
        if (!ok && this.#writable === undefined) {
          this.#writable = new Promise<void>((resolve) => {
            const done = (): void => {
              channel.off('drain', done);
              channel.off('close', done);
              this.#writable = undefined;
              resolve();
            };
            channel.on('drain', done);
            channel.on('close', done);
          });
        }
      } catch (error) {
        // amqplib throws IllegalOperationError on a closed channel (send again), and a TypeError or
        // similar for a message it cannot encode (no point in sending it again).
        if (error instanceof Error && error.name === 'IllegalOperationError') {
          reject(new InDoubtError('channel closed before the publish'));
        } else {
          reject(
            new PublishError(ErrorCode.ENCODE, `amqplib cannot send this message: ${(error as Error)?.message}`, {
              cause: error,
            }),
          );
        }
      }
    });
    // No listener on `signal` here: the producer's deadline already ends the wait for a confirm that
    // never comes, and a closed channel fails the callback (in doubt: sent again while `signal` allows).
    await confirmed;
  }

  /** Waits until the link is up and the confirm channel open; remembers the channel while it lives. */
  async #openChannel(signal: AbortSignal): Promise<ConfirmChannel> {
    await this.#link.whenUp(signal);
    const channel = await this.#confirmChannel();
    if (this.#channel !== undefined) this.#open = channel;
    return channel;
  }

  #confirmChannel(): Promise<ConfirmChannel> {
    const model = this.#connection.model;
    if (model === undefined) return Promise.reject(new InDoubtError('connection lost'));
    // A bounded write buffer (amqplib's default is 1,024 frames: 64 MiB of 64 KiB messages) before drain.
    this.#channel ??= model.createConfirmChannel({ highWaterMark: 256 }).then(
      (channel) => {
        channel.on('error', () => undefined);
        channel.on('return', (message: Message) => {
          const k = `${message.fields.exchange}\u0000${message.fields.routingKey}\u0000${String(message.properties.messageId ?? '')}`;
          this.#returns.set(k, (this.#returns.get(k) ?? 0) + 1);
        });
        channel.on('close', () => {
          if (this.#open === channel) this.#open = undefined;
          if (this.#channel === current) this.#channel = undefined;
        });
        return channel;
      },
      (error: unknown) => {
        this.#channel = undefined;
        throw new InDoubtError(`cannot open a channel: ${String((error as Error)?.message ?? error)}`);
      },
    );
    const current = this.#channel;
    return current;
  }

  /** Closes the publishing channel (the connection is closed by the transport). */
  async close(): Promise<void> {
    const channel = await this.#channel?.catch(() => undefined);
    this.#channel = undefined;
    this.#open = undefined;
    await channel?.close().catch(() => undefined);
  }
}

function key(plan: QueuePlan | ExchangePlan): string {
  return 'bindings' in plan ? `q:${plan.name}` : `x:${plan.name}`;
}
