import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from './socket.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A loopback server that collects everything it receives, and a client socket connected to it. */
async function pair(): Promise<{ client: Socket; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const server = createServer((peer) => peer.on('data', (chunk: Buffer) => chunks.push(chunk)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = connect({ host: '127.0.0.1', port });
  client.setNoDelay(true);
  await once(client, 'connect');
  cleanups.push(() => {
    client.destroy();
    server.close();
  });
  return { client, received: () => Buffer.concat(chunks) };
}

/** Counts the writes the socket hands to the kernel (one `_write` or `_writev` each). */
function countSyscalls(socket: Socket): () => number {
  let calls = 0;
  const target = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = target._write.bind(socket);
  const writev = target._writev.bind(socket);
  target._write = (...args) => {
    calls++;
    write(...args);
  };
  target._writev = (...args) => {
    calls++;
    writev(...args);
  };
  return () => calls;
}

describe('coalesceWrites', () => {
  it('sends the writes of one turn together, intact and in order', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    const syscalls = countSyscalls(client);
    const expected: string[] = [];
    for (let i = 0; i < 100; i++) {
      const frame = `frame-${i};`;
      expected.push(frame);
      client.write(frame);
    }
    const text = expected.join('');
    const deadline = Date.now() + 5_000;
    while (received().length < text.length && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(received().toString()).toBe(text);
    expect(syscalls()).toBe(1);
  });

  it('without it, every write is its own syscall (what the helper removes)', async () => {
    const { client, received } = await pair();
    const syscalls = countSyscalls(client);
    for (let i = 0; i < 10; i++) client.write(`frame-${i};`);
    const deadline = Date.now() + 5_000;
    while (received().length < 80 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(syscalls()).toBeGreaterThan(1);
  });

  it('a write in a later turn goes out in that turn, and end() flushes what is corked', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    client.write('first;');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    client.write('second;');
    client.end('last;');
    const deadline = Date.now() + 5_000;
    while (received().toString() !== 'first;second;last;' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(received().toString()).toBe('first;second;last;');
  });

  it('keeps text, bytes and a write with a callback in order, and runs the callback', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    client.write('a;');
    client.write(Buffer.from('b;'));
    client.write(new Uint8Array(Buffer.from('c;')));
    let called = false;
    client.write('d;', () => (called = true));
    client.write('é;', 'utf8');
    const deadline = Date.now() + 5_000;
    while (received().toString() !== 'a;b;c;d;é;' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(received().toString()).toBe('a;b;c;d;é;');
    expect(called).toBe(true);
  });

  it('reports back-pressure: false while the socket buffer is full, then drain', async () => {
    // A peer that does not read until told to, so the client's buffers fill up.
    let peer: Socket | undefined;
    let receivedBytes = 0;
    const server = createServer((socket) => {
      peer = socket;
      socket.pause();
      socket.on('data', (chunk: Buffer) => (receivedBytes += chunk.length));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
    await once(client, 'connect');
    cleanups.push(() => {
      client.destroy();
      server.close();
    });
    coalesceWrites(client);
    const big = Buffer.alloc(1024 * 1024, 0x61);
    let sent = 0;
    let accepted = true;
    for (let i = 0; i < 256 && accepted; i++) {
      accepted = client.write(big); // 1 MiB: over 64 KiB, sent at once
      sent += big.length;
    }
    expect(accepted).toBe(false); // the kernel buffers filled up and the socket's own buffer went over its mark
    expect(client.write('x')).toBe(false); // still full: collected, and reported as such
    sent += 1;
    const drained = once(client, 'drain');
    peer!.resume();
    await drained;
    const deadline = Date.now() + 10_000;
    while (receivedBytes < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(receivedBytes).toBe(sent);
  });
});
