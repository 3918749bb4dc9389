import { describe, it, expect, afterEach } from 'vitest';
import net, { type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { FaultProxy } from '../src/proxy.js';

const LOCALHOST = '127.0.0.1';

/** Undone after each test, last first. */
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls `condition` every 5 ms until it holds; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, message: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** An explicit observation window, only where the point is that something does NOT happen during it. */
function observe(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A local target server with counters; closed after the test. */
interface Target {
  readonly port: number;
  /** Connections it ever accepted. */
  readonly accepted: () => number;
  /** Its sockets, oldest first (closed ones included). */
  readonly sockets: Socket[];
  /** Its sockets not closed yet. */
  readonly open: () => number;
  /** Bytes it has read, over all connections. */
  readonly bytesIn: () => number;
  /** Its socket that has read exactly `text`. */
  readonly socketThatRead: (text: string) => Socket | undefined;
}

/** Echoes every byte back. */
function echo(socket: Socket): void {
  socket.pipe(socket);
}

async function startTarget(
  onSocket: (socket: Socket) => void = echo,
  options: net.ServerOpts = {},
  port = 0,
): Promise<Target> {
  const sockets: Socket[] = [];
  const read = new Map<Socket, string>();
  let bytesIn = 0;
  const server: Server = net.createServer({ noDelay: true, ...options }, (socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      bytesIn += chunk.length;
      read.set(socket, (read.get(socket) ?? '') + chunk.toString('latin1'));
    });
    sockets.push(socket);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, LOCALHOST, resolve));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => sockets.length,
    sockets,
    open: () => sockets.filter((socket) => !socket.closed).length,
    bytesIn: () => bytesIn,
    socketThatRead: (text) => sockets.find((socket) => read.get(socket) === text),
  };
}

async function startProxy(port: number, host = LOCALHOST): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target: { host, port } });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A test client that records everything that happens to it. */
interface Client {
  readonly socket: Socket;
  readonly data: () => Buffer;
  readonly text: () => string;
  readonly connected: () => boolean;
  readonly ended: () => boolean;
  readonly closed: () => boolean;
  readonly error: () => NodeJS.ErrnoException | undefined;
}

function connect(port: number): Client {
  const socket = net.connect({ host: LOCALHOST, port, noDelay: true });
  const chunks: Buffer[] = [];
  let connected = false;
  let ended = false;
  let closed = false;
  let error: NodeJS.ErrnoException | undefined;
  socket.on('connect', () => (connected = true));
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => (ended = true));
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e));
  socket.on('close', () => (closed = true));
  cleanups.push(() => void socket.destroy());
  return {
    socket,
    data: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString(),
    connected: () => connected,
    ended: () => ended,
    closed: () => closed,
    error: () => error,
  };
}

async function connected(port: number): Promise<Client> {
  const client = connect(port);
  await waitFor(() => client.connected() || client.closed(), 'connect');
  expect(client.connected()).toBe(true);
  return client;
}

/** Writes `text` and waits for the echo. */
async function roundTrip(client: Client, text: string): Promise<void> {
  const before = client.text();
  client.socket.write(text);
  await waitFor(() => client.text().length >= before.length + text.length, `echo of ${text}`);
  expect(client.text()).toBe(before + text);
}

/** A port with nothing listening on it. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('FaultProxy', () => {
  it('listens on an ephemeral port and reports its address', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    expect(proxy.host).toBe(LOCALHOST);
    expect(proxy.port).toBeGreaterThan(0);
    expect(proxy.port).not.toBe(target.port);
    expect(proxy.address).toBe(`${LOCALHOST}:${proxy.port}`);
    expect(proxy.stats()).toEqual({ accepted: 0, refused: 0, cut: 0, open: 0 });
    expect(target.accepted()).toBe(0); // nothing is connected upstream before a client comes
  });

  it('forwards bytes in both directions', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const client = await connected(proxy.port);
    await roundTrip(client, 'hello');
    await roundTrip(client, ' world');

    // The target speaks first, unprompted: upstream → client on its own.
    await waitFor(() => target.sockets.length === 1, 'upstream connection');
    target.sockets[0]!.write('greeting');
    await waitFor(() => client.text().endsWith('greeting'), 'greeting');
    expect(client.text()).toBe('hello worldgreeting');
    expect(proxy.stats()).toEqual({ accepted: 1, refused: 0, cut: 0, open: 1 });
  });

  it('carries a 1 MiB payload intact', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const client = await connected(proxy.port);
    const payload = randomBytes(1024 * 1024);
    client.socket.write(payload);
    await waitFor(() => client.data().length >= payload.length, '1 MiB echoed', 10_000);
    const received = client.data();
    expect(received.length).toBe(payload.length);
    expect(received.equals(payload)).toBe(true);
  });

  it('applies back-pressure: stops reading from the target while the client does not read', async () => {
    const total = 64 * 1024 * 1024;
    const chunk = 64 * 1024;
    let pushed = 0;
    const sent = createHash('sha256');
    // The target pushes `total` bytes as fast as the connection takes them (respecting its own back-pressure).
    const target = await startTarget((socket) => {
      const pump = (): void => {
        while (pushed < total) {
          const bytes = Buffer.alloc(chunk, (pushed / chunk) % 251);
          sent.update(bytes);
          pushed += chunk;
          if (!socket.write(bytes)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    const proxy = await startProxy(target.port);
    const client = connect(proxy.port);
    client.socket.pause();
    const received = createHash('sha256');
    let receivedBytes = 0;
    client.socket.on('data', (bytes: Buffer) => {
      received.update(bytes);
      receivedBytes += bytes.length;
    });

    // Wait until the target is stalled (its count stops moving for 300 ms); this wait is the observation window.
    let last = -1;
    let stableSince = Date.now();
    await waitFor(
      () => {
        if (pushed !== last) {
          last = pushed;
          stableSince = Date.now();
        }
        return pushed > 0 && Date.now() - stableSince >= 300;
      },
      'the target to stall',
      10_000,
    );
    // Only socket buffers fill up (~8 MiB measured here); a proxy that ignored write() returning false would have
    // read all 64 MiB into memory.
    expect(pushed).toBeLessThan(total / 2);

    client.socket.resume();
    await waitFor(() => receivedBytes >= total, 'all 64 MiB', 15_000);
    expect(receivedBytes).toBe(total);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  });

  it('sets TCP_NODELAY: request/response round trips take well under the 40 ms delayed ACK', async () => {
    // The target answers once a whole 8-byte request is in, in two writes, like a broker answering a frame.
    const target = await startTarget((socket) => {
      let pending = 0;
      socket.on('data', (bytes: Buffer) => {
        pending += bytes.length;
        while (pending >= 8) {
          pending -= 8;
          socket.write('abcd');
          socket.write('efgh');
        }
      });
    });
    const proxy = await startProxy(target.port);
    const client = await connected(proxy.port);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const expected = (i + 1) * 8;
      const started = performance.now();
      // The request goes in two segments 1 ms apart: with Nagle on the proxy's upstream socket, the second one waits
      // for the target's delayed ACK (~40 ms; measured 44 ms a round trip here without setNoDelay).
      client.socket.write('1234');
      await new Promise((resolve) => setTimeout(resolve, 1));
      client.socket.write('5678');
      await waitFor(() => client.data().length >= expected, `reply ${i}`);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    expect(times[10]!).toBeLessThan(10);
  });

  it('propagates a half-close: the client ending still receives what the target sends afterwards', async () => {
    let targetSawEnd = false;
    const target = await startTarget(
      (socket) => {
        socket.on('end', () => {
          targetSawEnd = true;
          socket.end('bye'); // sent after the client's FIN
        });
      },
      { allowHalfOpen: true },
    );
    const proxy = await startProxy(target.port);
    const client = await connected(proxy.port);
    client.socket.end('last words');
    await waitFor(() => client.closed(), 'client closed');
    expect(targetSawEnd).toBe(true);
    expect(target.bytesIn()).toBe('last words'.length);
    expect(client.text()).toBe('bye');
    expect(client.ended()).toBe(true);
    expect(client.error()).toBeUndefined();
    await waitFor(() => proxy.stats().open === 0 && target.open() === 0, 'both sides closed');
  });

  it('closes the client when the target closes or resets, and the target when the client goes away', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const ended = await connected(proxy.port);
    const reset = await connected(proxy.port);
    const leaving = await connected(proxy.port);
    await roundTrip(ended, 'a');
    await roundTrip(reset, 'b');
    await roundTrip(leaving, 'c');
    target.socketThatRead('a')!.end();
    target.socketThatRead('b')!.resetAndDestroy();
    await waitFor(() => ended.closed() && reset.closed(), 'clients closed');
    expect(ended.ended()).toBe(true);
    expect(ended.error()).toBeUndefined();
    expect(reset.error()?.code).toBe('ECONNRESET');

    leaving.socket.destroy();
    await waitFor(() => target.open() === 0, 'upstream sockets closed');
    await waitFor(() => proxy.stats().open === 0, 'no open connection');
    expect(proxy.stats()).toEqual({ accepted: 3, refused: 0, cut: 0, open: 0 });
  });

  it('cut() resets every open connection on both sides, and new connections still work', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const clients = [await connected(proxy.port), await connected(proxy.port), await connected(proxy.port)];
    for (const client of clients) await roundTrip(client, 'ping');
    expect(proxy.stats().open).toBe(3);

    await proxy.cut();
    expect(proxy.stats()).toEqual({ accepted: 3, refused: 0, cut: 3, open: 0 });
    await waitFor(() => clients.every((client) => client.closed()), 'clients closed');
    for (const client of clients) expect(client.error()?.code).toBe('ECONNRESET');
    await waitFor(() => target.open() === 0, 'upstream sockets closed');

    const after = await connected(proxy.port);
    await roundTrip(after, 'still here');
    expect(proxy.stats()).toEqual({ accepted: 4, refused: 0, cut: 3, open: 1 });
  });

  it('refuse(ms) cuts, resets new connections without reaching the target, then accepts again', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const before = await connected(proxy.port);
    await roundTrip(before, 'ping');

    const started = Date.now();
    await proxy.refuse(400);
    expect(proxy.refusing).toBe(true);
    await waitFor(() => before.closed(), 'existing connection cut');
    expect(before.error()?.code).toBe('ECONNRESET');

    const refused = connect(proxy.port);
    await waitFor(() => refused.closed(), 'refused connection closed', 1_000);
    expect(Date.now() - started).toBeLessThan(400); // it was inside the window
    expect(refused.error()?.code).toBe('ECONNRESET');
    expect(refused.text()).toBe('');
    expect(target.accepted()).toBe(1); // never reached the target
    expect(proxy.stats()).toEqual({ accepted: 1, refused: 1, cut: 1, open: 0 });

    await waitFor(() => !proxy.refusing, 'the window to end', 2_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(395);
    const after = await connected(proxy.port);
    await roundTrip(after, 'back');
    expect(target.accepted()).toBe(2);
    expect(proxy.stats()).toEqual({ accepted: 2, refused: 1, cut: 1, open: 1 });
  });

  it('refuse() without ms holds until accept()', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    await proxy.refuse();

    const first = connect(proxy.port);
    await waitFor(() => first.closed(), 'first refused');
    await observe(150); // longer than nothing: still refusing afterwards
    const second = connect(proxy.port);
    await waitFor(() => second.closed(), 'second refused');
    expect(second.error()?.code).toBe('ECONNRESET');
    expect(proxy.refusing).toBe(true);
    expect(target.accepted()).toBe(0);

    proxy.accept();
    expect(proxy.refusing).toBe(false);
    const after = await connected(proxy.port);
    await roundTrip(after, 'accepted');
    expect(proxy.stats()).toEqual({ accepted: 1, refused: 2, cut: 0, open: 1 });
  });

  it('freeze() holds bytes both ways on open and new connections; thaw() delivers them in order', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const open = await connected(proxy.port);
    await roundTrip(open, 'warm;');
    await waitFor(() => target.sockets.length === 1, 'upstream connection');
    const inBefore = target.bytesIn();

    proxy.freeze();
    expect(proxy.frozen).toBe(true);
    open.socket.write('one;');
    open.socket.write('two;');
    target.sockets[0]!.write('push;'); // upstream → client, held too
    const fresh = await connected(proxy.port); // the TCP handshake completes while frozen
    fresh.socket.write('fresh;');

    await observe(150);
    expect(open.text()).toBe('warm;');
    expect(fresh.text()).toBe('');
    expect(target.bytesIn()).toBe(inBefore);
    expect(target.accepted()).toBe(1); // the frozen newcomer is not connected upstream yet
    expect(open.closed() || fresh.closed()).toBe(false);
    expect(proxy.stats()).toEqual({ accepted: 2, refused: 0, cut: 0, open: 2 });

    proxy.thaw();
    expect(proxy.frozen).toBe(false);
    await waitFor(() => open.text() === 'warm;push;one;two;', 'held bytes of the open connection');
    await waitFor(() => fresh.text() === 'fresh;', 'held bytes of the new connection');
    expect(target.accepted()).toBe(2);
    await roundTrip(open, 'three;');
    await roundTrip(fresh, 'again;');
  });

  it('holds a target closing during a freeze until thaw', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const client = await connected(proxy.port);
    await roundTrip(client, 'hi;');
    await waitFor(() => target.sockets.length === 1, 'upstream connection');

    proxy.freeze();
    target.sockets[0]!.end('last;');
    await observe(150);
    expect(client.text()).toBe('hi;');
    expect(client.ended() || client.closed()).toBe(false); // looks alive at TCP level

    proxy.thaw();
    await waitFor(() => client.closed(), 'client closed after thaw');
    expect(client.text()).toBe('hi;last;');
    expect(client.ended()).toBe(true);
    expect(client.error()).toBeUndefined();
    await waitFor(() => proxy.stats().open === 0, 'no open connection');
  });

  it('cut() and close() tear down frozen connections too', async () => {
    const target = await startTarget();
    const proxy = await startProxy(target.port);
    const before = await connected(proxy.port);
    await roundTrip(before, 'x');
    proxy.freeze();
    before.socket.write('held');
    const during = await connected(proxy.port);

    await proxy.cut();
    await waitFor(() => before.closed() && during.closed(), 'frozen clients closed');
    expect(before.text()).toBe('x');
    expect(proxy.stats()).toEqual({ accepted: 2, refused: 0, cut: 2, open: 0 });
    await waitFor(() => target.open() === 0, 'upstream closed');

    const last = await connected(proxy.port);
    await proxy.close();
    await waitFor(() => last.closed(), 'frozen client closed by close()');
    proxy.thaw(); // nothing left to thaw; harmless
    expect(target.accepted()).toBe(1); // the two newcomers were never connected upstream
  });

  it('closes the client promptly when the target is down, and forwards again once it is back', async () => {
    const port = await freePort();
    const proxy = await startProxy(port);
    const started = Date.now();
    const client = connect(proxy.port);
    await waitFor(() => client.closed(), 'client closed', 2_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(client.error()?.code).toBe('ECONNRESET');
    expect(proxy.stats()).toEqual({ accepted: 1, refused: 0, cut: 0, open: 0 });

    const target = await startTarget(echo, {}, port);
    const after = await connected(proxy.port);
    await roundTrip(after, 'up again');
    expect(target.accepted()).toBe(1);
  });

  it('close() is idempotent, closes every connection, and the port stops accepting', async () => {
    const target = await startTarget();
    const proxy = await FaultProxy.start({ target: { host: LOCALHOST, port: target.port } });
    const clients = [await connected(proxy.port), await connected(proxy.port)];
    for (const client of clients) await roundTrip(client, 'bye');

    const closing = proxy.close();
    expect(proxy.close()).toBe(closing);
    await closing;
    expect(proxy.stats().open).toBe(0);
    await waitFor(() => clients.every((client) => client.closed()), 'clients closed');
    await waitFor(() => target.open() === 0, 'upstream closed');

    const refused = connect(proxy.port);
    await waitFor(() => refused.closed(), 'connect attempt to finish');
    expect(refused.connected()).toBe(false);
    expect(refused.error()?.code).toBe('ECONNREFUSED');
    await proxy.close();
    await expect(proxy.refuse(10)).resolves.toBeUndefined(); // no-op once closed
    expect(proxy.refusing).toBe(false);
  });

  it('proxies a real server: Redis answers PING through it, and again after a cut', async () => {
    const proxy = await startProxy(6379);
    const client = await connected(proxy.port);
    client.socket.write('PING\r\n');
    await waitFor(() => client.text().length >= 7, 'PONG');
    expect(client.text()).toBe('+PONG\r\n');

    await proxy.cut();
    await waitFor(() => client.closed(), 'client cut');
    const again = await connected(proxy.port);
    again.socket.write('PING\r\n');
    await waitFor(() => again.text().length >= 7, 'PONG after the cut');
    expect(again.text()).toBe('+PONG\r\n');
  });
});
