/**
 * Hello World on Ferry: `send()` puts "Hello World!" on the queue `hello`, `receive()` hands every
 * message of that queue to a callback. Nothing here names a transport: the URL picks it.
 */
import { connect, queue, type Broker, type Message } from '@ferry/core';

export const HELLO_QUEUE = 'hello';
export const GREETING = 'Hello World!';

export interface HelloOptions {
  /** The queue to use. Default `hello`. */
  readonly queue?: string;
}

/** Connects, sends `text` to the queue, and closes once the broker has taken it. */
export async function send(url: string, text = GREETING, options: HelloOptions = {}): Promise<void> {
  const broker = await connect(url, { source: 'hello-world' });
  try {
    // Resolves when the broker has the message (publisher confirm, PUBACK or RECEIPT).
    await broker.producer().publish(queue(options.queue ?? HELLO_QUEUE), { type: 'hello', data: text });
  } finally {
    await broker.close();
  }
}

/** A running consumer of the queue. */
export interface Receiver {
  readonly broker: Broker;
  /** Lets a message being handled finish, then disconnects. */
  close(): Promise<void>;
}

/** Connects and calls `onText` for every message of the queue, until `close()`. */
export async function receive(
  url: string,
  onText: (text: string, message: Message) => void | Promise<void>,
  options: HelloOptions = {},
): Promise<Receiver> {
  const broker = await connect(url, { source: 'hello-world' });
  try {
    // The handler returning acknowledges the message.
    await broker
      .consumer()
      .subscribe(queue(options.queue ?? HELLO_QUEUE), (message) => onText(textOf(message.data), message));
  } catch (error) {
    await broker.close();
    throw error;
  }
  return { broker, close: () => broker.close() };
}

/**
 * The text of a message. Ferry sends a string as `text/plain`, so it arrives as a string; a plain
 * client's message without a content type arrives as bytes.
 */
export function textOf(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  return JSON.stringify(data);
}
