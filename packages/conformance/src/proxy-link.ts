import net, { type Socket } from 'node:net';

/** One proxied connection: the accepted client socket and its upstream socket. */
export class Link {
  readonly #client: Socket;
  #upstream: Socket | undefined;
  readonly #target: { readonly host: string; readonly port: number };
  readonly #onClosed: () => void;
  #frozen: boolean;
  /** Torn down by the proxy: no more forwarding or propagation. */
  #destroyed = false;
  #clientClosed = false;
  #upstreamClosed = false;
  /** Chunks read while frozen, per destination. */
  readonly #toUpstream: Buffer[] = [];
  readonly #toClient: Buffer[] = [];
  /** Ends and closes that happened while frozen, in order. */
  readonly #heldEvents: (() => void)[] = [];
  readonly #closed: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(
    client: Socket,
    target: { readonly host: string; readonly port: number },
    frozen: boolean,
    onClosed: () => void,
  ) {
    this.#client = client;
    this.#target = target;
    this.#frozen = frozen;
    this.#onClosed = onClosed;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#onData(chunk, client, this.#upstream, this.#toUpstream));
    client.on('end', () => this.#onEnd(() => this.#upstream));
    client.on('drain', () => this.#resume(this.#upstream, client));
    client.on('close', (hadError: boolean) => {
      this.#clientClosed = true;
      this.#onClose(hadError, () => this.#upstream);
    });
    // The server accepted it paused (`pauseOnConnect`); it starts reading when not frozen.
    if (!frozen) this.#connectUpstream();
  }

  freeze(): void {
    this.#frozen = true;
    this.#client.pause();
    this.#upstream?.pause();
  }

  thaw(): void {
    this.#frozen = false;
    if (this.#destroyed) return;
    if (this.#upstream === undefined)
      this.#connectUpstream(); // accepted while frozen; flushes what the client sent
    else this.#flush(this.#toUpstream, this.#upstream);
    this.#flush(this.#toClient, this.#client);
    for (const event of this.#heldEvents.splice(0)) event();
    this.#resume(this.#client, this.#upstream);
    this.#resume(this.#upstream, this.#client);
  }

  /** Resets both sockets; resolves once both are closed. */
  destroy(): Promise<void> {
    this.#destroyed = true;
    this.#toUpstream.length = 0;
    this.#toClient.length = 0;
    this.#heldEvents.length = 0;
    reset(this.#client);
    if (this.#upstream !== undefined) reset(this.#upstream);
    return this.#closed;
  }

  #connectUpstream(): void {
    const client = this.#client;
    const upstream = net.connect({
      host: this.#target.host,
      port: this.#target.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    this.#upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    upstream.on('data', (chunk: Buffer) => this.#onData(chunk, upstream, client, this.#toClient));
    upstream.on('end', () => this.#onEnd(() => client));
    upstream.on('drain', () => this.#resume(client, upstream));
    upstream.on('close', (hadError: boolean) => {
      this.#upstreamClosed = true;
      this.#onClose(hadError, () => client);
    });
    // Bytes the client sent while frozen go first (writes before 'connect' are queued by the socket).
    this.#flush(this.#toUpstream, upstream);
    this.#resume(client, upstream);
  }

  #onData(chunk: Buffer, source: Socket, destination: Socket | undefined, held: Buffer[]): void {
    if (this.#destroyed) return;
    if (this.#frozen || destination === undefined) {
      held.push(chunk);
      source.pause();
      return;
    }
    if (!destination.writable) return; // the other side is going away; nothing can be delivered
    if (!destination.write(chunk)) source.pause(); // its 'drain' resumes the source
  }

  #onEnd(destination: () => Socket | undefined): void {
    if (this.#destroyed) return;
    const propagate = (): void => {
      const socket = destination();
      if (socket !== undefined && socket.writable) socket.end();
    };
    if (this.#frozen) this.#heldEvents.push(propagate);
    else propagate();
  }

  #onClose(hadError: boolean, other: () => Socket | undefined): void {
    if (this.#clientClosed && (this.#upstream === undefined || this.#upstreamClosed)) {
      this.#destroyed = true;
      this.#onClosed();
      this.#resolveClosed();
      return;
    }
    if (this.#destroyed) return;
    const propagate = (): void => {
      const socket = other();
      if (socket === undefined || socket.destroyed) return;
      if (hadError) {
        reset(socket);
      } else {
        // Nothing can flow back to a closed socket: finish writing, then close.
        if (socket.writable) socket.end();
        if (socket.writableFinished) socket.destroy();
        else socket.once('finish', () => socket.destroy());
      }
    };
    if (this.#frozen) this.#heldEvents.push(propagate);
    else propagate();
  }

  #flush(held: Buffer[], destination: Socket): void {
    for (const chunk of held.splice(0)) if (destination.writable) destination.write(chunk);
  }

  /** Resumes reading `source` unless frozen or `destination` is full (its 'drain' comes back here). */
  #resume(source: Socket | undefined, destination: Socket | undefined): void {
    if (this.#frozen || this.#destroyed || source === undefined || destination === undefined) return;
    if (source.destroyed || destination.writableNeedDrain) return;
    source.resume();
  }
}

/**
 * Destroys a socket with a TCP RST where possible: a plain destroy while still connecting, or once its
 * FIN went out (Node's `resetAndDestroy()` then fails with EINVAL and never emits `close`).
 */
export function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting || socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
