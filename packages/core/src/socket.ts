import type { Writable } from 'node:stream';

/**
 * Makes everything written to `socket` within one turn of the event loop go out together, in one
 * `writev` system call, instead of one call per protocol frame. With TCP_NODELAY (which every Ferry
 * socket sets) each write is a syscall and a packet; client libraries such as mqtt.js and stompjs write
 * every frame (every publish, every acknowledgement) on its own, and at 100 messages in flight those
 * syscalls were a quarter of the process's CPU. The first write of a turn corks the socket; the
 * socket is uncorked in the same turn's check phase (`setImmediate`), right after the I/O that
 * produced the writes, so a lone frame waits microseconds. Back-pressure is unchanged: `write` still
 * returns false past the high-water mark. For transports: call it once on each socket they create.
 */
export function coalesceWrites(socket: Writable): void {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the socket as `this` below
  const write = socket.write;
  let corked = false;
  const release = (): void => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  socket.write = function (this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(release);
    }
    return write.apply(this, args);
  } as Writable['write'];
}
