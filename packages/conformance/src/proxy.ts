/**
 * A small TCP fault proxy for transport tests: it listens on a local port, forwards every connection to a broker,
 * and on demand cuts every open connection, refuses new ones for a while, or freezes them (a peer that looks alive
 * at TCP level but never answers). It lets a test prove recovery without touching the shared broker process.
 *
 * ```ts
 * const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: 5672 } });
 * const broker = await connect(`amqp://guest:guest@${proxy.address}`);
 * await proxy.cut(); // the client sees a reset and must reconnect
 * ```
 *
 * Only `node:net` is used.
 *
 * @module @ferry/conformance/proxy
 */
import net, { type Server, type Socket } from 'node:net';
import { Link, reset } from './proxy-link.js';

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  /** Where to forward: the real broker. */
  readonly target: {
    /** The broker's host. */
    readonly host: string;
    /** The broker's port. */
    readonly port: number;
  };
  /** Listen address; default `127.0.0.1`. */
  readonly host?: string;
  /** Listen port; default `0`, an ephemeral port (read the actual one from {@link FaultProxy.port}). */
  readonly port?: number;
}

/** Counters of a {@link FaultProxy}, since it started. */
export interface FaultProxyStats {
  /** Connections accepted and forwarded (refused ones are not counted here). */
  readonly accepted: number;
  /** Connections reset on arrival because the proxy was refusing ({@link FaultProxy.refuse}). */
  readonly refused: number;
  /** Connections destroyed by {@link FaultProxy.cut} or {@link FaultProxy.refuse}. */
  readonly cut: number;
  /** Connections open now: accepted, and their client or upstream socket not closed yet. */
  readonly open: number;
}

/**
 * A TCP proxy in front of one target that can cut, refuse and freeze connections on demand.
 *
 * Forwarding respects back-pressure in both directions and sets `TCP_NODELAY` on both sockets of every connection
 * (Nagle's algorithm adds ~40 ms to request/response round trips through a proxy). Closing either side of a
 * connection closes the other: a clean end (FIN) is propagated as a half-close, an error or reset (including the
 * target refusing the upstream connection) resets the other side. No socket ever emits an unhandled `'error'`.
 *
 * Start one with {@link FaultProxy.start}; always {@link FaultProxy.close} it.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #target: { readonly host: string; readonly port: number };
  readonly #links = new Set<Link>();
  #host = '';
  #port = 0;
  #frozen = false;
  #refusing = false;
  #refuseTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #accepted = 0;
  #refused = 0;
  #cut = 0;

  private constructor(target: { readonly host: string; readonly port: number }) {
    this.#target = { host: target.host, port: target.port };
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) =>
      this.#onConnection(socket),
    );
    // Accept errors (EMFILE...) must not crash the test process; the listener keeps going.
    this.#server.on('error', () => undefined);
  }

  /**
   * Starts a proxy to `options.target`.
   *
   * @returns a proxy that is listening: when the promise resolves, {@link FaultProxy.port} is the actual port and
   *   connections to {@link FaultProxy.address} are accepted. Nothing is connected to the target until a client
   *   connects. Rejects if the address cannot be bound (e.g. `EADDRINUSE`).
   */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options.target);
    const host = options.host ?? '127.0.0.1';
    const server = proxy.#server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      server.once('error', onError);
      server.listen({ host, port: options.port ?? 0 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('FaultProxy: not listening on a TCP port');
    proxy.#host = host;
    proxy.#port = bound.port;
    return proxy;
  }

  /** The listen address (as given in the options, default `127.0.0.1`). */
  get host(): string {
    return this.#host;
  }

  /** The actual listening port (the ephemeral one when the options gave none or `0`). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` (IPv6 hosts in brackets), handy for URLs: `amqp://guest:guest@${proxy.address}`. */
  get address(): string {
    return this.#host.includes(':') ? `[${this.#host}]:${this.#port}` : `${this.#host}:${this.#port}`;
  }

  /** Whether new connections are being refused now ({@link FaultProxy.refuse} until it ends). */
  get refusing(): boolean {
    return this.#refusing;
  }

  /** Whether forwarding is frozen now ({@link FaultProxy.freeze} until {@link FaultProxy.thaw}). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /** A snapshot of the counters. */
  stats(): FaultProxyStats {
    return { accepted: this.#accepted, refused: this.#refused, cut: this.#cut, open: this.#links.size };
  }

  /**
   * Destroys every open connection now, both the client side and the upstream side, with a TCP RST (clients see
   * `ECONNRESET`, like a broker that crashed or a network that dropped them). Bytes held by a freeze are discarded.
   * New connections are still accepted (unless {@link FaultProxy.refuse} is in force); a freeze stays in force.
   *
   * @returns resolves once every socket of every connection open at the call is closed; `stats().cut` has counted
   *   them by then.
   */
  async cut(): Promise<void> {
    const links = [...this.#links];
    this.#cut += links.length;
    await Promise.all(links.map((link) => link.destroy()));
  }

  /**
   * Refuses new connections: each is accepted and immediately reset, without connecting to the target (clients see
   * `ECONNRESET` right after connecting). Open connections are cut first, as by {@link FaultProxy.cut}.
   *
   * @param ms how long to refuse; accepting resumes by itself after it. Omitted: until {@link FaultProxy.accept}.
   *   A new call replaces the previous window.
   * @returns resolves once every connection open at the call is closed; refusing is in force from the call on.
   */
  async refuse(ms?: number): Promise<void> {
    if (this.#closing !== undefined) return;
    this.#refusing = true;
    clearTimeout(this.#refuseTimer);
    this.#refuseTimer = undefined;
    if (ms !== undefined) {
      this.#refuseTimer = setTimeout(() => this.accept(), ms);
      // The listening server keeps the process alive anyway; the timer alone should not.
      this.#refuseTimer.unref();
    }
    await this.cut();
  }

  /** Stops refusing: connections arriving from now on are forwarded again. No-op when not refusing. */
  accept(): void {
    clearTimeout(this.#refuseTimer);
    this.#refuseTimer = undefined;
    this.#refusing = false;
  }

  /**
   * Freezes forwarding, like a network partition: open sockets stay open but no byte is forwarded in either
   * direction (sockets stop reading, so senders feel TCP back-pressure; bytes already read are held in order), and an
   * end or close of one side is not propagated to the other either. New connections are accepted (the TCP handshake
   * completes) but frozen too, and are connected to the target only on {@link FaultProxy.thaw}. The point is a peer
   * that looks alive at TCP level but never answers, which heartbeats must detect.
   *
   * Takes effect synchronously; no-op when already frozen. {@link FaultProxy.cut}, {@link FaultProxy.refuse} and
   * {@link FaultProxy.close} still destroy frozen connections.
   */
  freeze(): void {
    if (this.#frozen) return;
    this.#frozen = true;
    for (const link of this.#links) link.freeze();
  }

  /**
   * Ends a freeze: everything held is forwarded, in order, then any end or close that happened during the freeze is
   * propagated, and normal forwarding resumes. Connections accepted during the freeze are connected to the target
   * now. Takes effect synchronously (held bytes are handed to the sockets before it returns); no-op when not frozen.
   */
  thaw(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    for (const link of [...this.#links]) link.thaw();
  }

  /**
   * Stops listening and destroys every connection (with a reset, like {@link FaultProxy.cut}, but not counted in
   * `stats().cut`). Idempotent: every call returns the same promise.
   *
   * @returns resolves once the port is closed (new connections get `ECONNREFUSED`) and every socket is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.accept();
    const listening = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.all([...this.#links].map((link) => link.destroy()));
    await listening;
  }

  #onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.#closing !== undefined) {
      reset(socket);
      return;
    }
    if (this.#refusing) {
      this.#refused++;
      reset(socket);
      return;
    }
    this.#accepted++;
    const link = new Link(socket, this.#target, this.#frozen, () => this.#links.delete(link));
    this.#links.add(link);
  }
}
