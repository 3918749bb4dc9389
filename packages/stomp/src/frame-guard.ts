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
  /** What one `push` passes on, forwarded at its end as one piece. */
  #out: Buffer[] = [];

  constructor(forward: (bytes: Buffer) => void, maxBodyBytes = GUARD_MAX_BODY_BYTES) {
    this.#forward = forward;
    this.#maxBodyBytes = maxBodyBytes;
  }

  /**
   * Takes the bytes the socket received and forwards them, as one piece per call: stompjs copies every
   * piece it is handed, and a frame split into head and body pieces cost a copy each.
   */
  push(chunk: Buffer): void {
    this.#consume(chunk);
    const out = this.#out;
    if (out.length === 0) return;
    this.#out = [];
    this.#forward(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
  }

  #emit(bytes: Buffer): void {
    if (bytes.length > 0) this.#out.push(bytes);
  }

  #consume(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      switch (this.#mode) {
        case 'raw':
          this.#emit(data);
          return;
        case 'body':
        case 'skip': {
          const n = Math.min(this.#remaining, data.length);
          if (this.#mode === 'body') this.#emit(data.subarray(0, n));
          this.#remaining -= n;
          data = data.subarray(n);
          if (this.#remaining === 0) this.#mode = 'head';
          break;
        }
        case 'scan': {
          const end = data.indexOf(NUL);
          if (end < 0) {
            this.#emit(data);
            return;
          }
          this.#emit(data.subarray(0, end + 1));
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
              this.#emit(data.subarray(0, i));
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
              this.#emit(head);
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
    const length = contentLength(head);
    if (length !== undefined && length > this.#maxBodyBytes && isMessage(head)) {
      const lines = head.toString('utf8').split(/\r?\n/);
      const kept = lines.filter((line) => line !== '' && !line.startsWith('content-length:'));
      this.#emit(Buffer.from(`${kept.join('\n')}\n${OVERSIZE_HEADER}:${length}\ncontent-length:0\n\n\u0000`, 'utf8'));
      this.#mode = 'skip';
      this.#remaining = length + 1; // the body and its NUL
      return;
    }
    this.#emit(head);
    if (length === undefined) {
      this.#mode = 'scan';
    } else {
      this.#mode = 'body';
      this.#remaining = length + 1;
    }
  }
}

const CONTENT_LENGTH = Buffer.from('content-length:');
const MESSAGE = Buffer.from('MESSAGE');

/** The frame's first `content-length` header (STOMP 1.2: the first occurrence wins), read off the bytes. */
function contentLength(head: Buffer): number | undefined {
  for (let at = head.indexOf(CONTENT_LENGTH); at !== -1; at = head.indexOf(CONTENT_LENGTH, at + 1)) {
    if (at === 0 || head[at - 1] !== LF) continue; // inside another header's value
    let value = 0;
    let digits = 0;
    for (let i = at + CONTENT_LENGTH.length; i < head.length; i++) {
      const c = head[i] as number;
      if (c === LF || c === CR) break;
      if (c < 0x30 || c > 0x39 || digits > 15) return undefined;
      value = value * 10 + (c - 0x30);
      digits++;
    }
    return digits === 0 ? undefined : value;
  }
  return undefined;
}

/** Whether the frame's command (its first line) is MESSAGE. */
function isMessage(head: Buffer): boolean {
  const end = head.indexOf(LF);
  const command = end === -1 ? head : head.subarray(0, end > 0 && head[end - 1] === CR ? end - 1 : end);
  return command.equals(MESSAGE);
}

const LF_LF = Buffer.from('\n\n');
const LF_CRLF = Buffer.from('\n\r\n');

/** Where the header block ends (after its blank line), or -1 while it is incomplete: two native searches. */
function headEnd(buffer: Buffer): number {
  const lf = buffer.indexOf(LF_LF);
  const crlf = buffer.indexOf(LF_CRLF);
  if (lf === -1) return crlf === -1 ? -1 : crlf + 3;
  if (crlf === -1 || lf < crlf) return lf + 2;
  return crlf + 3;
}
