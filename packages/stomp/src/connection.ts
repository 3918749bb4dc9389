import { Client, type IFrame, type IStompSocket } from '@stomp/stompjs';
import {
  type Backoff,
  ConnectionError,
  Emitter,
  type FerryError,
  type Logger,
  Reconnector,
  type Redactor,
} from '@ferry/core';
import { installFrameReader } from './frames.js';
import type { StompSettings } from './options.js';
import { TcpStompSocket, webSocket } from './socket.js';

/** The socket under a live session, with its write-buffer state. */
export type SessionSocket = IStompSocket & { needsDrain(): boolean; drained(): Promise<void> };

/** One connected STOMP session: a stompjs client on one socket. A reconnect makes a new session. */
export interface Session {
  readonly client: Client;
  readonly socket: SessionSocket;
}

/** Events of a {@link ManagedConnection}. */
export interface ConnectionEvents {
  [event: string]: (...args: never[]) => void;
  up: (session: Session) => void;
  down: (error: FerryError) => void;
  reconnecting: (attempt: number, delayMs: number) => void;
  /** An ERROR frame from the broker (the session closes after it); `receiptId` names the frame that caused it, if known. */
  brokerError: (error: FerryError, receiptId: string | undefined) => void;
  /** Reconnecting stopped: the broker refused this connection's frames with an ERROR `maxErrorClosures` times in a row. */
  failed: (error: FerryError) => void;
}

/**
 * One STOMP connection that reconnects by itself with backoff. stompjs neither resubscribes nor queues
 * while offline, so each reconnect is a fresh stompjs client (its own reconnect is off) and the
 * transport re-issues its subscriptions on `up`.
 */
export class ManagedConnection extends Emitter<ConnectionEvents> {
  readonly role: 'publish' | 'consume';
  #session: Session | undefined;
  readonly #reconnector: Reconnector<Session>;
  /** The last ERROR frame's text in the current session, if any. */
  #errorFrame: string | undefined;
  /** Sessions in a row that ended right after an ERROR frame. */
  #errorClosures = 0;
  /** After this many sessions in a row end with an ERROR frame, stop reconnecting (`Infinity`: never stop). */
  maxErrorClosures = Number.POSITIVE_INFINITY;
  readonly #settings: StompSettings;
  readonly #logger: Logger;
  readonly #redactor: Redactor;

  constructor(
    role: 'publish' | 'consume',
    settings: StompSettings,
    backoff: Backoff,
    logger: Logger,
    redactor: Redactor,
  ) {
    super();
    this.role = role;
    this.#settings = settings;
    this.#logger = logger;
    this.#redactor = redactor;
    this.#reconnector = new Reconnector(backoff, {
      connect: () => this.#connect(),
      attach: (session) => this.#attach(session),
      discard: (session) => void session.client.deactivate().catch(() => undefined),
      scheduled: (attempt, delayMs) => this.emit('reconnecting', attempt, delayMs),
      failed: (error, attempt) =>
        this.#logger.debug({ role: this.role, attempt, error: (error as Error).message }, 'reconnect failed'),
    });
  }

  get session(): Session | undefined {
    return this.#session;
  }

  /** Connects the first time. @throws ConnectionError (redacted) */
  async open(): Promise<void> {
    this.#attach(await this.#connect());
  }

  async close(): Promise<void> {
    this.#reconnector.stop();
    const session = this.#session;
    this.#session = undefined;
    if (session !== undefined) await session.client.deactivate().catch(() => undefined);
  }

  /** Fault injection for tests: drops the socket as a network failure would; reconnects as usual. */
  destroySocket(): void {
    this.#session?.socket.terminate?.();
  }

  #connect(): Promise<Session> {
    installFrameReader();
    const s = this.#settings;
    return new Promise<Session>((resolve, reject) => {
      let socket: SessionSocket | undefined;
      let settled = false;
      const fail = (reason: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void client.deactivate({ force: true }).catch(() => undefined);
        reject(
          this.#redactor.error(
            new ConnectionError(
              `Cannot connect to ${this.#redactor.url(url)} (${this.role}): ${reason}. Check the URL, the credentials and that RabbitMQ's STOMP plugin is running`,
              { cause },
            ),
          ),
        );
      };
      const url = s.transport === 'websocket' ? s.webSocketUrl : `${s.tls ? 'stomps' : 'stomp'}://${s.host}:${s.port}`;
      const client = new Client({
        webSocketFactory: () => {
          socket = s.transport === 'websocket' ? webSocket(s) : new TcpStompSocket(s);
          return socket;
        },
        connectHeaders: {
          host: s.vhost,
          ...(s.login === undefined ? {} : { login: s.login }),
          ...(s.passcode === undefined ? {} : { passcode: s.passcode }),
        },
        heartbeatIncoming: s.heartbeatMs,
        heartbeatOutgoing: s.heartbeatMs,
        reconnectDelay: 0, // Ferry reconnects, with its own backoff, and resubscribes
        forceBinaryWSFrames: true,
        appendMissingNULLonIncoming: false,
        debug: () => undefined, // stompjs debug output contains the passcode: never forwarded
      });
      const timer = setTimeout(
        () => fail(`no CONNECTED within ${s.connectTimeoutMs} ms`),
        s.connectTimeoutMs || 2 ** 31 - 1,
      );
      // A MESSAGE for a subscription stompjs already forgot (it arrived after UNSUBSCRIBE): give it
      // back, or it stays unacknowledged until the connection closes.
      client.onUnhandledMessage = (message) => message.nack();
      client.onConnect = () => {
        if (settled || socket === undefined) return;
        settled = true;
        clearTimeout(timer);
        resolve({ client, socket });
      };
      client.onStompError = (frame: IFrame) => {
        const text = brokerText(frame);
        if (!settled) fail(`the broker answered ERROR: ${text}`);
        else {
          this.#errorFrame = text;
          const error = this.#redactor.error(new ConnectionError(`STOMP broker ERROR: ${text}`)) as FerryError;
          this.emit('brokerError', error, frame.headers['receipt-id']);
        }
      };
      client.onWebSocketError = (event: unknown) => {
        const error = (event as { error?: Error })?.error;
        if (!settled) fail(error?.message ?? 'socket error', error);
      };
      client.onWebSocketClose = () => {
        if (!settled) fail('the connection closed before CONNECTED');
      };
      client.activate();
    });
  }

  /** The text of the ERROR frame that ended the last session, if one did. */
  get lastErrorFrame(): string | undefined {
    return this.#errorFrame;
  }

  #attach(session: Session): void {
    this.#session = session;
    this.#reconnector.reset();
    this.#errorFrame = undefined;
    const connectedAt = Date.now();
    const previous = session.client.onWebSocketClose;
    session.client.onWebSocketClose = (event: unknown) => {
      previous(event);
      if (this.#session !== session) return;
      this.#session = undefined;
      void session.client.deactivate({ force: true }).catch(() => undefined);
      if (this.#reconnector.stopped) return;
      const refused = this.#errorFrame;
      // A session refused within seconds of connecting, again and again, is a configuration problem
      // (a queue declared with other arguments, a forbidden header): stop instead of looping.
      this.#errorClosures = refused !== undefined && Date.now() - connectedAt < 10_000 ? this.#errorClosures + 1 : 0;
      const lost = new ConnectionError(
        refused === undefined
          ? `STOMP ${this.role} connection lost`
          : `STOMP ${this.role} connection closed by the broker: ${refused}`,
      );
      this.emit('down', this.#redactor.error(lost) as FerryError);
      if (this.#errorClosures >= this.maxErrorClosures) {
        this.#reconnector.stop();
        this.emit('failed', this.#redactor.error(lost) as FerryError);
        return;
      }
      this.#reconnector.schedule();
    };
    this.emit('up', session);
  }
}

/** The broker's message of an ERROR frame (`message` header and body). */
export function brokerText(frame: IFrame): string {
  const message = frame.headers['message'] ?? 'ERROR';
  const body = frame.body.trim();
  return body === '' ? message : `${message}: ${body.slice(0, 500)}`;
}
