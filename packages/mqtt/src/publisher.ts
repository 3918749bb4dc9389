import type { Packet } from 'mqtt';
import { abortable, ErrorCode, InDoubtError, PublishError, resendInDoubt } from '@ferry/core';
import type { ManagedConnection, Session } from './connection.js';
import type { QoS } from './options.js';
import type { PublishProperties } from './wire.js';

/** Waits until the transport can publish (connected, subscriptions restored). */
export type ReadyGate = (signal: AbortSignal) => Promise<void>;

/** One outgoing PUBLISH. */
export interface Outgoing {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: PublishProperties | undefined;
}

/** MQTT 5 PUBACK/PUBREC reason codes a broker uses to refuse a message. */
const REFUSALS: Readonly<Record<number, string>> = {
  0x10: 'no matching subscribers',
  0x80: 'unspecified error',
  0x83: 'implementation specific error (Mosquitto: message larger than message_size_limit)',
  0x87: 'not authorized (ACL)',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x97: 'quota exceeded',
  0x99: 'payload format invalid',
};

/**
 * Publishes on one connection and resolves on the PUBACK (QoS 1), PUBCOMP (QoS 2) or once written
 * (QoS 0). mqtt.js's offline queue is never used: a publish waits for the link (bounded by `signal`),
 * and one in doubt at a cut is sent again, same Ferry id, on the next session. At most the broker's
 * Receive Maximum are unacknowledged at once, and a full socket buffer is waited out.
 */
export class Publisher {
  readonly #connection: ManagedConnection;
  readonly #ready: ReadyGate;
  readonly #pending = new Set<(error: Error) => void>();
  #inFlight = 0;
  readonly #slotWaiters: Array<() => void> = [];

  constructor(connection: ManagedConnection, ready: ReadyGate) {
    this.#connection = connection;
    this.#ready = ready;
    connection.on('down', () => {
      for (const reject of this.#pending) reject(new InDoubtError('connection lost before the PUBACK'));
      this.#pending.clear();
      // Waiters for a slot re-check the session and find it gone.
      for (const wake of this.#slotWaiters.splice(0)) wake();
    });
  }

  async send(message: Outgoing, signal: AbortSignal): Promise<void> {
    await resendInDoubt(signal, () => this.#sendOnce(message, signal));
  }

  async #slot(session: Session, signal: AbortSignal): Promise<void> {
    while (this.#inFlight >= session.serverReceiveMaximum) {
      await abortable(new Promise<void>((resolve) => this.#slotWaiters.push(resolve)), signal);
      if (this.#connection.session !== session) throw new InDoubtError('not connected');
    }
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#slotWaiters.shift()?.();
  }

  async #sendOnce(message: Outgoing, signal: AbortSignal): Promise<void> {
    await this.#ready(signal);
    const session = this.#connection.session;
    if (session === undefined) throw new InDoubtError('not connected');
    if (session.socket.writableNeedDrain) {
      await abortable(
        new Promise<void>((resolve) => {
          const done = (): void => {
            session.socket.off('drain', done);
            session.socket.off('close', done);
            resolve();
          };
          session.socket.once('drain', done);
          session.socket.once('close', done);
        }),
        signal,
      );
      if (this.#connection.session !== session) throw new InDoubtError('not connected');
    }
    const counted = message.qos > 0;
    if (counted) await this.#slot(session, signal);
    let reject!: (error: Error) => void;
    const confirmed = new Promise<void>((resolve, fail) => {
      reject = fail;
      session.client.publish(
        message.topic,
        message.payload,
        {
          qos: message.qos,
          retain: message.retain,
          ...(message.properties === undefined ? {} : { properties: message.properties }),
        },
        (error?: Error, packet?: Packet) => {
          if (error === undefined || error === null) {
            resolve();
            return;
          }
          const code = (error as { code?: number }).code ?? (packet as { reasonCode?: number } | undefined)?.reasonCode;
          if (typeof code === 'number' && code >= 0x80) {
            fail(
              new PublishError(
                ErrorCode.PUBLISH_REJECTED,
                `The MQTT broker refused the message to ${message.topic}: ${REFUSALS[code] ?? `reason code 0x${code.toString(16)}`}`,
              ),
            );
          } else if (session.client.connected) {
            fail(new PublishError(ErrorCode.PUBLISH_REJECTED, `Publish to ${message.topic} failed: ${error.message}`));
          } else {
            fail(new InDoubtError('connection lost before the PUBACK'));
          }
        },
      );
    });
    this.#pending.add(reject);
    try {
      await abortable(confirmed, signal);
    } finally {
      this.#pending.delete(reject);
      if (counted) this.#release();
    }
  }
}
