import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MqttClient, type IClientOptions, type IConnackPacket, type IDisconnectPacket } from 'mqtt';
import {
  coalesceWrites,
  type Backoff,
  ConnectionError,
  Emitter,
  type FerryError,
  type Logger,
  Reconnector,
  type Redactor,
} from '@ferry/core';
import type { MqttSettings } from './options.js';

/** One connected MQTT session: an mqtt.js client on one socket. A reconnect makes a new session. */
export interface Session {
  readonly client: MqttClient;
  readonly socket: Socket;
  /** CONNACK's session-present flag: the broker kept the subscriptions and waiting messages. */
  readonly sessionPresent: boolean;
  /** MQTT 5 CONNACK: can the broker do shared subscriptions (absent means yes)? Undefined on 3.1.1. */
  readonly sharedSubscriptionAvailable: boolean | undefined;
  /** Most QoS 1/2 publishes the broker accepts unacknowledged (MQTT 5 Receive Maximum; 65535 when unsaid). */
  readonly serverReceiveMaximum: number;
}

/** Events of a {@link ManagedConnection}. */
export interface ConnectionEvents {
  [event: string]: (...args: never[]) => void;
  up: (session: Session) => void;
  down: (error: FerryError) => void;
  reconnecting: (attempt: number, delayMs: number) => void;
  /** Something the broker said that does not change the state (e.g. a DISCONNECT reason). */
  brokerError: (error: FerryError) => void;
}

/** What makes one connection: its client id, session and (for consumers) receive window. */
export interface ConnectionSpec {
  /** `publish` or `consume`, for messages. */
  readonly role: string;
  readonly clientId: string;
  /** Clean Start (MQTT 5) / clean session (3.1.1). */
  readonly clean: boolean;
  /** MQTT 5 session expiry, seconds (0: the session ends at disconnect). */
  readonly sessionExpirySec: number;
  /** MQTT 5 Receive Maximum: most unacknowledged QoS 1 messages the broker sends at once. */
  readonly receiveMaximum?: number;
}

/** CONNACK return codes of MQTT 3.1.1 and reason codes of MQTT 5 that say what to fix. */
const CONNACK_HINTS: Readonly<Record<number, string>> = {
  1: 'the broker does not accept this MQTT protocol version: set ?protocolVersion=4 (3.1.1) or 5',
  2: 'the broker refused the client id',
  3: 'the broker is unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
  0x84: 'the broker does not accept this MQTT protocol version: set ?protocolVersion=4 (3.1.1) or 5',
  0x85: 'the broker refused the client id',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'the broker is unavailable',
  0x89: 'the broker is busy',
  0x8a: 'this client is banned',
};

/** Connection errors that are a broker's CONNACK refusal. */
const refused = new WeakSet<object>();

/**
 * One MQTT connection that reconnects by itself with backoff. mqtt.js's own reconnect is off (its
 * offline queue is unbounded and it retries a refused CONNECT forever): each attempt is a fresh client
 * with the same client id, so a consumer's persistent session resumes, and the owner re-subscribes on `up`.
 */
export class ManagedConnection extends Emitter<ConnectionEvents> {
  readonly spec: ConnectionSpec;
  #session: Session | undefined;
  readonly #reconnector: Reconnector<Session>;
  readonly #settings: MqttSettings;
  readonly #logger: Logger;
  readonly #redactor: Redactor;
  /**
   * Called with each new mqtt.js client before it connects, so a consumer can take over its message
   * handling before a resumed session's first PUBLISH arrives (it may come with the CONNACK).
   */
  onClient: ((client: MqttClient) => void) | undefined;
  /** The reason of the broker's last DISCONNECT (MQTT 5), for the `down` error. */
  #disconnectReason: string | undefined;

  constructor(spec: ConnectionSpec, settings: MqttSettings, backoff: Backoff, logger: Logger, redactor: Redactor) {
    super();
    this.spec = spec;
    this.#settings = settings;
    this.#logger = logger;
    this.#redactor = redactor;
    this.#reconnector = new Reconnector(backoff, {
      connect: () => this.#connect(),
      attach: (session) => this.#attach(session),
      discard: (session) => session.client.end(true),
      scheduled: (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs),
      failed: (error, attempt) => {
        // A broker that refuses the CONNECT (changed credentials, revoked rights) is worth telling: the
        // reconnect goes on, but only an operator can fix that.
        if (refused.has(error as object)) {
          this.#logger.warn({ role: spec.role, attempt, error: (error as Error).message }, 'reconnect refused');
          this.emit('brokerError', error as FerryError);
        } else {
          this.#logger.debug({ role: spec.role, attempt, error: (error as Error).message }, 'reconnect failed');
        }
      },
    });
  }

  get session(): Session | undefined {
    return this.#session;
  }

  get label(): string {
    const s = this.#settings;
    return this.#redactor.url(`${s.tls ? 'mqtts' : 'mqtt'}://${s.host}:${s.port}`);
  }

  /** Connects the first time. @throws ConnectionError (redacted) */
  async open(): Promise<Session> {
    const session = await this.#connect();
    this.#attach(session);
    return session;
  }

  /**
   * Disconnects. `endSession` asks an MQTT 5 broker to drop the session (expiry 0) with the DISCONNECT.
   * Waits for the DISCONNECT to be written, at most 2 s.
   */
  async close(endSession = false): Promise<void> {
    this.#reconnector.stop();
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    const opts =
      endSession && this.#settings.protocolVersion === 5
        ? { reasonCode: 0, properties: { sessionExpiryInterval: 0 } }
        : {};
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        session.client.end(true);
        resolve();
      }, 2_000);
      session.client.end(false, opts, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    session.socket.destroy();
  }

  /** Fault injection for tests: drops the socket as a network failure would; reconnects as usual. */
  destroySocket(): void {
    this.#session?.socket.destroy();
  }

  #connect(): Promise<Session> {
    const s = this.#settings;
    const spec = this.spec;
    return new Promise<Session>((resolve, reject) => {
      let socket: Socket | undefined;
      let settled = false;
      /** The broker answered CONNACK with a refusal (credentials, authorization, …), not a network failure. */
      let refusal = false;
      const fail = (reason: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        detach();
        client.on('error', () => undefined);
        client.end(true);
        socket?.destroy();
        const error = this.#redactor.error(
          new ConnectionError(
            `Cannot connect to ${this.label} (${spec.role}): ${reason}. Check the URL, the credentials and that the MQTT broker is running`,
            { cause },
          ),
        );
        if (refusal) refused.add(error);
        reject(error);
      };
      const options: IClientOptions = {
        clientId: spec.clientId,
        protocolVersion: s.protocolVersion,
        clean: spec.clean,
        keepalive: s.keepaliveSec,
        reconnectPeriod: 0, // Ferry reconnects, with its own backoff, and re-subscribes
        connectTimeout: s.connectTimeoutMs || 2 ** 31 - 1,
        resubscribe: false,
        queueQoSZero: false,
        ...(s.username === undefined ? {} : { username: s.username }),
        ...(s.password === undefined ? {} : { password: s.password }),
        ...(s.protocolVersion === 5
          ? {
              properties: {
                sessionExpiryInterval: spec.sessionExpirySec,
                ...(spec.receiveMaximum === undefined ? {} : { receiveMaximum: spec.receiveMaximum }),
              },
            }
          : {}),
      };
      const client = new MqttClient(() => {
        const tcp = s.tls
          ? tlsConnect({
              host: s.host,
              port: s.port,
              // SNI carries host names only (RFC 6066): Node warns about an IP address there.
              ...(isIP(s.host) === 0 ? { servername: s.host } : {}),
              ...s.tlsOptions,
            })
          : netConnect({ host: s.host, port: s.port });
        tcp.setNoDelay(true); // mqtt.js leaves Nagle on: 44 ms round trips instead of 0.2 ms
        coalesceWrites(tcp); // mqtt.js writes every packet on its own: one writev per turn instead
        socket = tcp;
        return tcp;
      }, options);
      this.onClient?.(client);
      const timer = setTimeout(
        () => fail(`no CONNACK within ${s.connectTimeoutMs} ms`),
        s.connectTimeoutMs || 2 ** 31 - 1,
      );
      client.once('connect', (packet: IConnackPacket) => {
        if (settled || socket === undefined) return;
        settled = true;
        clearTimeout(timer);
        detach();
        const props = packet.properties;
        resolve({
          client,
          socket,
          sessionPresent: packet.sessionPresent,
          sharedSubscriptionAvailable:
            s.protocolVersion === 5 ? (props?.sharedSubscriptionAvailable ?? true) : undefined,
          serverReceiveMaximum: props?.receiveMaximum ?? 65_535,
        });
      });
      const onError = (error: Error & { code?: number }): void => {
        if (settled) return;
        const code = typeof error.code === 'number' ? error.code : undefined;
        const hint = code === undefined ? undefined : CONNACK_HINTS[code];
        if (hint !== undefined) refusal = true;
        fail(hint === undefined ? error.message : `${hint} (CONNACK code 0x${code!.toString(16)})`, error);
      };
      const onClose = (): void => {
        if (settled) return;
        fail(
          s.protocolVersion === 5
            ? 'the broker closed the connection before CONNACK; a broker that speaks only MQTT 3.1.1 (RabbitMQ 3.x) does that to an MQTT 5 CONNECT: set ?protocolVersion=4'
            : 'the broker closed the connection before CONNACK',
        );
      };
      const detach = (): void => {
        client.off('error', onError);
        client.off('close', onClose);
      };
      client.on('error', onError);
      client.on('close', onClose);
    });
  }

  #attach(session: Session): void {
    this.#session = session;
    this.#reconnector.reset();
    this.#disconnectReason = undefined;
    const { client } = session;
    client.on('error', (error: Error) => {
      this.#logger.debug({ role: this.spec.role, error: error.message }, 'mqtt client error');
    });
    client.on('disconnect', (packet: IDisconnectPacket) => {
      const reason = packet.properties?.reasonString ?? `reason code 0x${(packet.reasonCode ?? 0).toString(16)}`;
      this.#disconnectReason =
        packet.reasonCode === 0x8e
          ? `session taken over: another client connected with client id ${this.spec.clientId} (two processes with one mqtt.instanceId?)`
          : reason;
      if (packet.reasonCode === 0x8e) {
        this.emit('brokerError', new ConnectionError(`MQTT ${this.spec.role} connection: ${this.#disconnectReason}`));
      }
    });
    client.on('close', () => {
      if (this.#session !== session) return;
      this.#session = undefined;
      client.end(true);
      session.socket.destroy();
      if (this.#reconnector.stopped) return;
      const reason = this.#disconnectReason;
      const lost = new ConnectionError(
        reason === undefined
          ? `MQTT ${this.spec.role} connection lost`
          : `MQTT ${this.spec.role} connection closed by the broker: ${reason}`,
      );
      this.emit('down', this.#redactor.error(lost) as FerryError);
      this.#reconnector.schedule();
    });
    this.emit('up', session);
  }
}
