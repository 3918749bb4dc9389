import { randomBytes } from 'node:crypto';
import { deadLetterQueueName, ErrorCode, HEADER_DEAD_LETTER_CODE, queue } from '@ferry/core';
import { uniqueName, waitFor } from '@ferry/conformance';
import { describe, expect, it } from 'vitest';
import { FrameGuard, OVERSIZE_HEADER } from '../src/frame-guard.js';
import { connectStomp, deleteQueues, rawStomp } from './broker.js';

function frame(command: string, headers: Record<string, string>, body: Buffer): Buffer {
  const head = [command, ...Object.entries(headers).map(([k, v]) => `${k}:${v}`)].join('\n');
  return Buffer.concat([Buffer.from(`${head}\n\n`), body, Buffer.from([0])]);
}

/** Feeds `bytes` to a guard in chunks of `size` and returns what it forwarded. */
function through(bytes: Buffer, size: number, max: number): Buffer {
  const out: Buffer[] = [];
  const guard = new FrameGuard((b) => out.push(Buffer.from(b)), max);
  for (let i = 0; i < bytes.length; i += size) guard.push(bytes.subarray(i, i + size));
  return Buffer.concat(out);
}

describe('stomp frame guard', () => {
  const small = frame('MESSAGE', { 'content-length': '5', subscription: 's' }, Buffer.from('hello'));
  const nul = frame('MESSAGE', { 'content-length': '3', subscription: 's' }, Buffer.from([0, 1, 0]));
  const noLength = frame('RECEIPT', { 'receipt-id': 'r1' }, Buffer.alloc(0));
  const big = frame('MESSAGE', { 'content-length': '100', subscription: 's', ack: 'a1' }, randomBytes(100));
  const stream = Buffer.concat([Buffer.from('\n\n'), small, Buffer.from('\n'), nul, noLength, big, small]);

  it('passes frames under the limit through byte for byte, whatever the chunking', () => {
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      expect(through(stream, size, 1_000).equals(stream), `chunks of ${size}`).toBe(true);
    }
  });

  it('hands on a MESSAGE over the limit without its body, marked with its size, and keeps the stream in step', () => {
    const expected = Buffer.concat([
      Buffer.from('\n\n'),
      small,
      Buffer.from('\n'),
      nul,
      noLength,
      Buffer.from(`MESSAGE\nsubscription:s\nack:a1\n${OVERSIZE_HEADER}:100\ncontent-length:0\n\n\u0000`),
      small,
    ]);
    for (const size of [1, 5, 33, stream.length]) {
      expect(through(stream, size, 50).toString('latin1'), `chunks of ${size}`).toBe(expected.toString('latin1'));
    }
  });

  it('reads content-length only at the start of a header line, and the first one wins (STOMP 1.2)', () => {
    // A header value that contains "content-length:" is not the frame's length; a repeated header is ignored.
    const decoy = frame(
      'MESSAGE',
      { 'x-note': 'content-length:999999', 'content-length': '5', subscription: 's' },
      Buffer.from('hello'),
    );
    const repeated = Buffer.concat([
      Buffer.from('MESSAGE\ncontent-length:5\ncontent-length:999999\nsubscription:s\n\nhello'),
      Buffer.from([0]),
    ]);
    const crlf = Buffer.concat([Buffer.from('MESSAGE\r\ncontent-length:5\r\n\r\nhello'), Buffer.from([0])]);
    const input = Buffer.concat([decoy, repeated, crlf, small]);
    for (const size of [1, 4, 17, input.length]) {
      expect(through(input, size, 50).equals(input), `chunks of ${size}`).toBe(true);
    }
  });

  it('a 20 MiB message from a plain client is dead-lettered as FERRY_MESSAGE_TOO_LARGE; the consumer goes on', async () => {
    const q = queue(uniqueName('stomp-huge'));
    const dlq = queue(deadLetterQueueName(q));
    const broker = await connectStomp();
    const raw = await rawStomp();
    try {
      const handled: string[] = [];
      const dead: Array<{ code: string | undefined }> = [];
      await broker.consumer().subscribe(q, (m) => void handled.push(String(m.data)));
      await broker
        .consumer()
        .subscribe(dlq, (m) => void dead.push({ code: m.headers[HEADER_DEAD_LETTER_CODE] }), { decode: false });
      raw.publish({ destination: `/queue/${q.name}`, binaryBody: randomBytes(20 * 1024 * 1024) });
      raw.publish({ destination: `/queue/${q.name}`, body: 'after', headers: { 'content-type': 'text/plain' } });
      await waitFor(
        () => dead.length === 1 && handled.includes('after'),
        30_000,
        'the dead letter and the next message',
      );
      expect(dead[0]!.code).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    } finally {
      await raw.deactivate();
      await broker.close();
      await deleteQueues([q.name, dlq.name]);
    }
  }, 60_000);
});
