import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { coalesceWrites } from '@ferry/core';
import type { IStompSocket } from '@stomp/stompjs';
import WebSocket from 'ws';
import { FrameGuard, GUARD_MAX_BODY_BYTES } from './frame-guard.js';
import type { StompSettings } from './options.js';

/** The WebSocket ready states stompjs reads. */
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/**
 * A plain TCP (or TLS) socket shaped like the WebSocket stompjs expects, with TCP_NODELAY on. The
 * published `@stomp/tcp-wrapper` has no TLS; this is Ferry's own. `needsDrain()` / `drained()` expose
 * the socket's write buffer so publishers can wait instead of buffering without bound.
 */
export class TcpStompSocket implements IStompSocket {
  /** `stomp://host:port` or `stomps://host:port` (no credentials). */
  readonly url: string;
  /** Set by stompjs: called once the socket closed. */
  onclose: ((ev?: unknown) => unknown) | undefined | null = null;
  /** Set by stompjs: called on a socket error. */
  onerror: ((ev: unknown) => unknown) | undefined | null = null;
  /** Set by stompjs: called with `{ data }` (an `ArrayBuffer`) for the bytes received. */
  onmessage: ((ev: unknown) => unknown) | undefined | null = null;
  /** Set by stompjs: called once connected (after the TLS handshake for `stomps`). */
  onopen: ((ev?: unknown) => unknown) | undefined | null = null;
  binaryType = 'arraybuffer';
  #state = CONNECTING;
  readonly #socket: Socket;
  #drained: Promise<void> | undefined;

  /** Made by the transport's connection from its resolved settings. @internal */
  constructor(settings: StompSettings) {
    const { host, port } = settings;
    this.url = `${settings.tls ? 'stomps' : 'stomp'}://${host}:${port}`;
    this.#socket = settings.tls
      ? tlsConnect({ host, port, servername: isIp(host) ? undefined : host, ...settings.tlsOptions })
      : netConnect({ host, port });
    const socket = this.#socket;
    socket.setNoDelay(true);
    coalesceWrites(socket); // stompjs sends every frame on its own: one writev per turn instead
    socket.once(settings.tls ? 'secureConnect' : 'connect', () => {
      this.#state = OPEN;
      this.onopen?.();
    });
    const guard = new FrameGuard((bytes) => {
      // stompjs wants an ArrayBuffer: the bytes' own when they fill it, else a copy of just them.
      const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const data = whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      this.onmessage?.({ data });
    });
    socket.on('data', (chunk: Buffer) => guard.push(chunk));
    socket.on('error', (error: Error) => {
      this.onerror?.({ error, message: error.message });
    });
    socket.on('close', (hadError: boolean) => {
      this.#state = CLOSED;
      this.onclose?.({ code: hadError ? 1006 : 1000, reason: '', wasClean: !hadError });
    });
  }

  get readyState(): number {
    return this.#state;
  }

  /** True when the socket's write buffer is over its high-water mark. */
  needsDrain(): boolean {
    return this.#socket.writableNeedDrain;
  }

  /** Resolves when the write buffer drained (or the socket closed). One wait is shared by every caller. */
  drained(): Promise<void> {
    if (!this.#socket.writableNeedDrain) return Promise.resolve();
    this.#drained ??= new Promise((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        this.#drained = undefined;
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return this.#drained;
  }

  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (this.#state !== OPEN) return;
    if (typeof data === 'string') this.#socket.write(data);
    else if (ArrayBuffer.isView(data))
      this.#socket.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else if (data instanceof ArrayBuffer) this.#socket.write(new Uint8Array(data));
  }

  close(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSING;
    this.#socket.end();
    this.#socket.destroySoon();
  }

  /** Drops the connection at once, as a network failure would. */
  terminate(): void {
    this.#state = CLOSING;
    this.#socket.destroy();
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** A WebSocket to RabbitMQ's web-STOMP plugin (`ws://…:15674/ws`), with TCP_NODELAY on its socket. */
export function webSocket(settings: StompSettings): IStompSocket & { needsDrain(): boolean; drained(): Promise<void> } {
  const ws = new WebSocket(settings.webSocketUrl, ['v12.stomp'], {
    ...(settings.tlsOptions ?? {}),
    handshakeTimeout: settings.connectTimeoutMs || undefined,
    // A larger WebSocket message closes the connection (1009) instead of reaching stompjs's parser.
    maxPayload: GUARD_MAX_BODY_BYTES + 64 * 1024,
  });
  ws.binaryType = 'arraybuffer';
  ws.on('upgrade', (response) => response.socket.setNoDelay(true));
  ws.on('error', () => undefined); // reported through onerror / onclose
  const wrapped = ws as unknown as IStompSocket & { needsDrain(): boolean; drained(): Promise<void> };
  wrapped.needsDrain = () => ws.bufferedAmount > 16 * 1024 * 1024;
  wrapped.drained = async () => {
    while (ws.readyState === OPEN && ws.bufferedAmount > 16 * 1024 * 1024) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return wrapped;
}
