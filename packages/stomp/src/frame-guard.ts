/**
 * stompjs's parser keeps every body byte in a plain JS array: a 16 MiB body takes about 585 MiB and 1.6 s
 * to parse, and a body above about 107 MiB kills the process (V8 "invalid size"). RabbitMQ accepts
 * messages up to 128 MiB, e.g. from an AMQP publisher. This guard sits between the socket and stompjs:
 * it passes frames through unchanged, except a MESSAGE whose `content-length` exceeds `maxBodyBytes`,
 * which it hands on with an empty body and a `ferry-oversize:<bytes>` header (the transport dead-letters
 * it as `FERRY_MESSAGE_TOO_LARGE`) while it skips the body bytes on the wire.
 */
export const GUARD_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** The header that marks a MESSAGE whose body the guard dropped. */
export const OVERSIZE_HEADER = 'ferry-oversize';

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
/** A header block longer than this is not STOMP we can read: pass the bytes through as they are. */
const MAX_HEAD_BYTES = 1024 * 1024;

export class FrameGuard {
  readonly #forward: (bytes: Buffer) => void;
  readonly #maxBodyBytes: number;
  #head: Buffer = Buffer.alloc(0);
  #mode: 'head' | 'body' | 'skip' | 'scan' | 'raw' = 'head';
  #remaining = 0;

  constructor(forward: (bytes: Buffer) => void, maxBodyBytes = GUARD_MAX_BODY_BYTES) {
    this.#forward = forward;
    this.#maxBodyBytes = maxBodyBytes;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      switch (this.#mode) {
        case 'raw':
          this.#forward(data);
          return;
        case 'body':
        case 'skip': {
          const n = Math.min(this.#remaining, data.length);
          if (this.#mode === 'body') this.#forward(data.subarray(0, n));
          this.#remaining -= n;
          data = data.subarray(n);
          if (this.#remaining === 0) this.#mode = 'head';
          break;
        }
        case 'scan': {
          const end = data.indexOf(NUL);
          if (end < 0) {
            this.#forward(data);
            return;
          }
          this.#forward(data.subarray(0, end + 1));
          data = data.subarray(end + 1);
          this.#mode = 'head';
          break;
        }
        case 'head': {
          if (this.#head.length === 0) {
            // Heart-beats and EOLs between frames.
            let i = 0;
            while (i < data.length && (data[i] === LF || data[i] === CR)) i++;
            if (i > 0) {
              this.#forward(data.subarray(0, i));
              data = data.subarray(i);
              continue;
            }
          }
          this.#head = this.#head.length === 0 ? data : Buffer.concat([this.#head, data]);
          const end = headEnd(this.#head);
          if (end < 0) {
            if (this.#head.length > MAX_HEAD_BYTES) {
              this.#mode = 'raw';
              const head = this.#head;
              this.#head = Buffer.alloc(0);
              this.#forward(head);
            }
            return;
          }
          const head = this.#head.subarray(0, end);
          data = this.#head.subarray(end);
          this.#head = Buffer.alloc(0);
          this.#frame(head);
          break;
        }
      }
    }
  }

  #frame(head: Buffer): void {
    const text = head.toString('utf8');
    const lines = text.split(/\r?\n/);
    const command = lines[0] ?? '';
    let length: number | undefined;
    for (const line of lines.slice(1)) {
      if (line.startsWith('content-length:')) {
        const value = Number(line.slice('content-length:'.length));
        if (Number.isInteger(value) && value >= 0) length = value;
        break; // the first occurrence wins (STOMP 1.2)
      }
    }
    if (command === 'MESSAGE' && length !== undefined && length > this.#maxBodyBytes) {
      const kept = lines.filter((line) => line !== '' && !line.startsWith('content-length:'));
      this.#forward(
        Buffer.from(`${kept.join('\n')}\n${OVERSIZE_HEADER}:${length}\ncontent-length:0\n\n\u0000`, 'utf8'),
      );
      this.#mode = 'skip';
      this.#remaining = length + 1; // the body and its NUL
      return;
    }
    this.#forward(head);
    if (length === undefined) {
      this.#mode = 'scan';
    } else {
      this.#mode = 'body';
      this.#remaining = length + 1;
    }
  }
}

/** The index just past the blank line that ends a frame's command and headers, or -1. */
function headEnd(buffer: Buffer): number {
  for (let i = 0; i < buffer.length - 1; i++) {
    if (buffer[i] !== LF) continue;
    if (buffer[i + 1] === LF) return i + 2;
    if (buffer[i + 1] === CR && buffer[i + 2] === LF) return i + 3;
  }
  return -1;
}
