import type { Socket } from 'node:net';
import type { Packet } from 'mqtt';
import { abortable, ErrorCode, InDoubtError, pause, PublishError, resendInDoubt, type LinkState } from '@ferry/core';
import type { ManagedConnection, Session } from './connection.js';
import type { QoS } from './options.js';
import type { PublishProperties } from './wire.js';

/** One outgoing PUBLISH. */
export interface Outgoing {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: PublishProperties | undefined;
  /**
   * What to do when an MQTT 5 broker answers "no matching subscribers" (reason code 0x10, which means it
   * dropped the message): `ignore` it (a fan-out event nobody listens to), `reject` with
   * `FERRY_UNROUTABLE` (a mandatory topic publish), or `wait` for a subscriber, sending it again for up
   * to the grace period, then reject (a queue: its consumers may be re-subscribing after a broker restart).
   */
  readonly unrouted: 'ignore' | 'reject' | 'wait';
  /** What to name in an unroutable error. */
  readonly label: string;
}

/** MQTT 5 reason code "No matching subscribers": the broker accepted the PUBLISH and dropped it. */
export const NO_MATCHING_SUBSCRIBERS = 0x10;

/** MQTT 5 PUBACK/PUBREC reason codes a broker uses to refuse a message. */
const REFUSALS: Readonly<Record<number, string>> = {
  0x80: 'unspecified error',
  0x83: 'implementation specific error (Mosquitto: message larger than message_size_limit)',
  0x87: 'not authorized (ACL)',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x97: 'quota exceeded',
  0x99: 'payload format invalid',
};

/** Publish callbacks whose PUBACK/PUBREC said "no matching subscribers". */
const unrouted = new WeakSet<object>();
const watched = new WeakSet<object>();

/**
 * mqtt.js takes reason code 0x10 for success and does not pass it on: read it off the packet before
 * mqtt.js handles it, and mark the callback of the publish it answers.
 */
function watchUnrouted(session: Session): void {
  const client = session.client;
  if (watched.has(client)) return;
  watched.add(client);
  client.on('packetreceive', (packet: Packet) => {
    if ((packet.cmd !== 'puback' && packet.cmd !== 'pubrec') || packet.reasonCode !== NO_MATCHING_SUBSCRIBERS) return;
    const outgoing = (client as unknown as { outgoing: Record<number, { cb?: object } | undefined> }).outgoing;
    const pending = packet.messageId === undefined ? undefined : outgoing[packet.messageId];
    if (pending?.cb !== undefined) unrouted.add(pending.cb);
  });
}

/**
 * Does the broker say "no matching subscribers"? Publishes once (QoS 1) to a topic nobody subscribes
 * to: an MQTT 5 broker that reports it answers 0x10.
 */
export function reportsUnrouted(session: Session, topic: string): Promise<boolean> {
  watchUnrouted(session);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 2_000);
    const callback = (error?: Error): void => {
      clearTimeout(timer);
      resolve((error === undefined || error === null) && unrouted.has(callback));
    };
    session.client.publish(topic, '', { qos: 1 }, callback);
  });
}

/**
 * Publishes on one connection and resolves on the PUBACK (QoS 1), PUBCOMP (QoS 2) or once written
 * (QoS 0). mqtt.js's offline queue is never used: a publish waits for the link (bounded by `signal`),
 * and one in doubt at a cut is sent again, same Ferry id, on the next session. At most the broker's
 * Receive Maximum are unacknowledged at once, and a full socket buffer is waited out.
 */
export class Publisher {
  readonly #connection: ManagedConnection;
  readonly #link: Pick<LinkState, 'whenUp' | 'status'>;
  readonly #pending = new Set<(error: Error) => void>();
  #inFlight = 0;
  readonly #slotWaiters: Array<() => void> = [];

  /** @param link the transport's link: publishes wait until it is up (connected, subscriptions restored). */
  constructor(connection: ManagedConnection, link: Pick<LinkState, 'whenUp' | 'status'>) {
    this.#connection = connection;
    this.#link = link;
    connection.on('down', () => {
      for (const reject of this.#pending) reject(new InDoubtError('connection lost before the PUBACK'));
      this.#pending.clear();
      // Waiters for a slot re-check the session and find it gone.
      for (const wake of this.#slotWaiters.splice(0)) wake();
    });
  }

  /** How long a queue publish waits for a subscriber after "no matching subscribers", ms. */
  unroutableGraceMs = 5_000;

  async send(message: Outgoing, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      let routed = true;
      await resendInDoubt(signal, async () => {
        routed = await this.#sendOnce(message, signal);
      });
      if (routed || message.unrouted === 'ignore') return;
      if (message.unrouted === 'reject' || Date.now() - started >= this.unroutableGraceMs) {
        throw new PublishError(
          ErrorCode.UNROUTABLE,
          message.unrouted === 'reject'
            ? `No subscription receives ${message.label}: the MQTT broker answered "no matching subscribers" and dropped the message`
            : `No subscription receives ${message.label} (the MQTT broker answered "no matching subscribers" for ${this.unroutableGraceMs} ms): an MQTT broker keeps messages only for sessions that subscribed. Start a consumer of it first; after a broker restart, its consumers must subscribe again`,
        );
      }
      // The broker dropped it: sending it again is no duplicate.
      await pause(Math.min(20 * 2 ** attempt, 500), signal);
    }
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

  /** Sends once; resolves whether a subscriber matched (always true except on an MQTT 5 0x10 answer). */
  async #sendOnce(message: Outgoing, signal: AbortSignal): Promise<boolean> {
    if (this.#link.status !== 'up') await this.#link.whenUp(signal);
    const session = this.#connection.session;
    if (session === undefined) throw new InDoubtError('not connected');
    if (session.socket.writableNeedDrain) {
      await abortable(drained(session.socket), signal);
      if (this.#connection.session !== session) throw new InDoubtError('not connected');
    }
    const counted = message.qos > 0;
    if (counted) await this.#slot(session, signal);
    watchUnrouted(session);
    let reject!: (error: Error) => void;
    let callback!: (error?: Error, packet?: Packet) => void;
    const confirmed = new Promise<void>((resolve, fail) => {
      reject = fail;
      callback = (error?: Error, packet?: Packet) => {
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
      };
      session.client.publish(
        message.topic,
        message.payload,
        {
          qos: message.qos,
          retain: message.retain,
          ...(message.properties === undefined ? {} : { properties: message.properties }),
        },
        callback,
      );
    });
    this.#pending.add(reject);
    // No listener on `signal` here: the producer's deadline already ends the wait for a PUBACK that
    // never comes, and a lost connection rejects what is pending (in doubt: sent again while `signal` allows).
    try {
      await confirmed;
    } finally {
      this.#pending.delete(reject);
      if (counted) this.#release();
    }
    return !unrouted.has(callback);
  }
}

const drains = new WeakMap<Socket, Promise<void>>();

/** Resolves when `socket`'s write buffer drained or it closed; one wait is shared by every publish. */
function drained(socket: Socket): Promise<void> {
  let waiting = drains.get(socket);
  if (waiting === undefined) {
    waiting = new Promise<void>((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        drains.delete(socket);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
    drains.set(socket, waiting);
  }
  return waiting;
}
