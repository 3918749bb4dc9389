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
});
