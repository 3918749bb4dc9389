import {
  abortable,
  ErrorCode,
  type FerryError,
  InDoubtError,
  PublishError,
  resendInDoubt,
  type LinkState,
} from '@ferry/core';
import type { ManagedConnection } from './connection.js';

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** Armed by an ERROR frame that did not close the connection. */
  timer?: NodeJS.Timeout;
}

/** After an ERROR frame, how long a publish may still wait for its RECEIPT before it counts as the refused one, ms. */
const REFUSAL_GRACE_MS = 1_000;

/**
 * Publishes with a `receipt` header and resolves on the RECEIPT (RabbitMQ sends it for a persistent
 * message once the broker confirmed it). A publish whose receipt was in doubt at a cut is sent again,
 * same Ferry id, after the reconnect — until `signal` aborts. Waits while the socket's write buffer is
 * full instead of buffering without bound.
 */
export class Publisher {
  readonly #connection: ManagedConnection;
  readonly #link: Pick<LinkState, 'whenUp' | 'status'>;
  readonly #pending = new Map<string, Pending>();
  #sequence = 0;

  /** @param link the transport's link: publishes wait until it is up (connected, subscriptions restored). */
  constructor(connection: ManagedConnection, link: Pick<LinkState, 'whenUp' | 'status'>) {
    this.#connection = connection;
    this.#link = link;
    connection.on('down', () => {
      const errorFrame = connection.lastErrorFrame;
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new InDoubtError('connection lost before the receipt', errorFrame));
      }
      this.#pending.clear();
    });
    connection.on('brokerError', (error: FerryError, receiptId: string | undefined) => {
      const refused = (): PublishError =>
        new PublishError(
          ErrorCode.PUBLISH_REJECTED,
          `RabbitMQ refused the message: ${error.message.replace(/^STOMP broker ERROR: /, '')}`,
        );
      const named = receiptId === undefined ? undefined : this.#pending.get(receiptId);
      if (named !== undefined) {
        this.#pending.delete(receiptId!);
        named.reject(refused());
        return;
      }
      // RabbitMQ's ERROR frames name no receipt-id. Frames are processed in order, so the publishes it
      // did accept get their RECEIPT soon; one still waiting after a grace period is the refused one.
      for (const [id, pending] of this.#pending) {
        pending.timer ??= setTimeout(() => {
          if (this.#pending.get(id) !== pending) return;
          this.#pending.delete(id);
          pending.reject(refused());
        }, REFUSAL_GRACE_MS).unref();
      }
    });
  }

  async send(
    destination: string,
    headers: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<void> {
    let refusals = 0;
    await resendInDoubt(
      signal,
      () => this.#sendOnce(destination, headers, body, signal),
      (error) => {
        // RabbitMQ names no receipt-id in its ERROR frames: a publish in flight when ERROR closed the
        // connection twice in a row is taken to be the one it refused, and fails instead of looping.
        if (error instanceof InDoubtError && error.detail !== undefined && ++refusals >= 2) {
          throw new PublishError(ErrorCode.PUBLISH_REJECTED, `RabbitMQ refused the message: ${error.detail}`);
        }
      },
    );
  }

  async #sendOnce(
    destination: string,
    headers: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#link.status !== 'up') await this.#link.whenUp(signal);
    const session = this.#connection.session;
    if (session === undefined) throw new InDoubtError('not connected');
    if (session.socket.needsDrain()) await abortable(session.socket.drained(), signal);
    const receipt = `ferry-${++this.#sequence}`;
    const confirmed = new Promise<void>((resolve, reject) => {
      this.#pending.set(receipt, { resolve, reject });
    });
    try {
      session.client.watchForReceipt(receipt, () => {
        const pending = this.#pending.get(receipt);
        this.#pending.delete(receipt);
        clearTimeout(pending?.timer);
        pending?.resolve();
      });
      headers['receipt'] = receipt; // the frame's own object (toFrame makes one per message); a resend replaces it
      session.client.publish({ destination, headers, binaryBody: body });
    } catch {
      this.#pending.delete(receipt);
      throw new InDoubtError('not connected'); // stompjs throws a TypeError when the session just closed
    }
    // No listener on `signal` here: the producer's deadline already ends the wait for a RECEIPT that
    // never comes, and a lost connection fails the pending receipts (in doubt: sent again while `signal` allows).
    try {
      await confirmed;
    } finally {
      this.#pending.delete(receipt);
    }
  }
}
