import type { Writable } from 'node:stream';

/** Past this many bytes waiting, they go out at once rather than at the end of the turn. */
const FLUSH_BYTES = 64 * 1024;

/**
 * Makes everything written to `socket` within one turn of the event loop go out together, as one buffer
 * in one system call, instead of one call per protocol frame. With TCP_NODELAY (which every Ferry socket
 * sets) each write is a syscall and a packet; client libraries such as mqtt.js and stompjs write every
 * frame (every publish, every acknowledgement) on its own, and mqtt.js writes a frame as many small
 * pieces (a header byte, a length, each property's key and value): corked, those became one `writev` of
 * hundreds of tiny buffers, which the kernel copies piece by piece. Writes are collected here without
 * the stream machinery (which allocates a request object per write) and handed to the socket as one
 * contiguous buffer in the same turn's check phase (`setImmediate`), right after the I/O that produced
 * them, so a lone frame waits microseconds; 64 KiB waiting go out at once. Back-pressure is unchanged:
 * `write` returns false while the socket's own buffer is over its high-water mark, and the socket emits
 * `drain`. A write with a callback, and `end()`, send what is waiting first, in order. For transports:
 * call it once on each socket they create, before handing it to a client library.
 */
export function coalesceWrites(socket: Writable): void {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the socket as `this` below
  const write = socket.write as (
    this: Writable,
    chunk: unknown,
    encoding?: BufferEncoding,
    callback?: (error?: Error | null) => void,
  ) => boolean;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the socket as `this` below
  const end = socket.end;
  let pending: Buffer[] = [];
  let bytes = 0;
  let scheduled: NodeJS.Immediate | undefined;

  const flush = (): boolean => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (pending.length === 0) return !socket.writableNeedDrain;
    const chunk = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, bytes);
    pending = [];
    bytes = 0;
    if (socket.destroyed) return false;
    return write.call(socket, chunk);
  };

  socket.write = function (
    this: Writable,
    chunk: unknown,
    encoding?: BufferEncoding | ((error?: Error | null) => void),
    callback?: (error?: Error | null) => void,
  ): boolean {
    const done = typeof encoding === 'function' ? encoding : callback;
    const charset = typeof encoding === 'string' ? encoding : undefined;
    if (done !== undefined || socket.destroyed || socket.writableEnded || !isBytes(chunk)) {
      flush();
      return write.call(socket, chunk, charset, done);
    }
    const buffer =
      typeof chunk === 'string'
        ? Buffer.from(chunk, charset ?? 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    pending.push(buffer);
    bytes += buffer.length;
    if (bytes >= FLUSH_BYTES) return flush();
    scheduled ??= setImmediate(flush);
    return !socket.writableNeedDrain;
  } as Writable['write'];

  socket.end = function (this: Writable, ...args: unknown[]): Writable {
    flush();
    return (end as (...a: unknown[]) => Writable).apply(this, args);
  } as Writable['end'];
}

/** A chunk this helper can collect: text or bytes. */
function isBytes(chunk: unknown): chunk is string | Uint8Array {
  return typeof chunk === 'string' || chunk instanceof Uint8Array;
}
