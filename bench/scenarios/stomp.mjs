// STOMP on RabbitMQ's STOMP plugin: Ferry (@ferry/stomp) against @stomp/stompjs used directly over TCP, in
// the same run, on the same broker.
//
// Both sides do the same work (see bench/lib/ferry.mjs and raw-common.mjs for the drivers): 1 KiB JSON
// messages, publish lanes that each await the RECEIPT of their SEND before sending the next, and a consumer
// that decodes each message and ACKs it after the handler. Like Ferry, the raw side uses one connection to
// publish and one per subscription.
// - stompjs over a plain TCP socket shaped like the WebSocket stompjs expects (the same adapter shape as
//   Ferry's packages/stomp/src/socket.ts, without Ferry's frame-size guard), with TCP_NODELAY; heart-beats
//   10 s both ways, as Ferry; stompjs's own reconnect off.
// - SEND: `publish({ destination: '/queue/<q>', body: JSON.stringify(payload), headers: { receipt, persistent,
//   durable, 'auto-delete': 'false', exclusive: 'false', 'content-type' } })`, resolved by `watchForReceipt`.
//   RabbitMQ sends the RECEIPT once it confirmed the message (on disk for a persistent one).
// - SUBSCRIBE `/queue/<q>` with `ack: client-individual`, `prefetch-count` = concurrency and the same queue
//   headers; the callback JSON.parse's `message.body`, runs the handler, then `message.ack()`.
// - transient (Ferry `durable: false`): the queue is declared non-durable (not exclusive, not auto-delete,
//   as Ferry declares it) and SENDs carry `persistent:false`; persistent: a durable queue and
//   `persistent:true`. Round trip uses a transient queue.
// - Ferry replaces stompjs's incoming-header reader process-wide (packages/stomp/src/frames.ts); while the
//   raw side runs, the bench puts stompjs's own reader back, so the raw side is stompjs as shipped.
// Every queue either side declared is deleted (over AMQP) after its run.
import { Client, FrameImpl } from '@stomp/stompjs';
import { kibPayload, uniqueName, within } from '../lib/stats.mjs';
import { compareRabbitScenarios, noDelaySocket, packageVersion, QueueJanitor } from './raw-common.mjs';

export const name = 'stomp';

const SECTION = 'stomp';
const RAW = 'stompjs';
const SCENARIOS = 4;
/** stompjs's own header reader, taken before any Ferry STOMP connection replaced it. */
const STOCK_FRAME_READER = FrameImpl.fromRawFrame;

export function steps(ctx) {
  return SCENARIOS * (ctx.warmup + ctx.reps);
}

/** A TCP socket with TCP_NODELAY, shaped like the WebSocket stompjs drives (readyState, send, on* callbacks). */
class TcpSocket {
  url;
  binaryType = 'arraybuffer';
  readyState = 0;
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;
  #socket;

  constructor(host, port) {
    this.url = `stomp://${host}:${port}`;
    const socket = (this.#socket = noDelaySocket(host, port));
    socket.once('connect', () => {
      this.readyState = 1;
      this.onopen?.();
    });
    socket.on('data', (chunk) => {
      this.onmessage?.({ data: chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) });
    });
    socket.on('error', (error) => this.onerror?.({ error, message: error.message }));
    socket.on('close', (hadError) => {
      this.readyState = 3;
      this.onclose?.({ code: hadError ? 1006 : 1000, reason: '', wasClean: !hadError });
    });
  }

  send(data) {
    if (this.readyState !== 1) return;
    if (typeof data === 'string') this.#socket.write(data);
    else if (ArrayBuffer.isView(data))
      this.#socket.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else this.#socket.write(new Uint8Array(data));
  }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 2;
    this.#socket.end();
    this.#socket.destroySoon();
  }

  terminate() {
    this.readyState = 2;
    this.#socket.destroy();
  }
}

/** A connected stompjs client over a TcpSocket. */
async function stompClient(url) {
  const { hostname, port, username, password, searchParams } = new URL(url);
  const client = new Client({
    webSocketFactory: () => new TcpSocket(hostname, Number(port || 61613)),
    connectHeaders: {
      host: searchParams.get('vhost') ?? '/',
      login: decodeURIComponent(username || 'guest'),
      passcode: decodeURIComponent(password || 'guest'),
    },
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    reconnectDelay: 0,
    debug: () => undefined,
  });
  try {
    await within(
      new Promise((resolve, reject) => {
        client.onConnect = resolve;
        client.onStompError = (frame) => reject(new Error(`bench: STOMP ERROR ${frame.headers.message}`));
        client.onWebSocketClose = () => reject(new Error('bench: STOMP connection closed before CONNECTED'));
        client.activate();
      }),
      10_000,
      'a STOMP CONNECT',
    );
  } catch (error) {
    await client.deactivate({ force: true }).catch(() => undefined);
    throw error;
  }
  client.onWebSocketClose = () => undefined;
  return client;
}

/** Calls `send(receipt)`, which sends a frame with that `receipt` header on `client`; resolves on its RECEIPT. */
function withReceipt(client, receipt, send) {
  return new Promise((resolve) => {
    client.watchForReceipt(receipt, () => resolve());
    send(receipt);
  });
}

/** The raw stompjs client: the subscription's connection first, then the publishing one; `{ publish, close }`. */
async function openRaw(url, janitor, { durable, concurrency }, onMessage) {
  const queue = uniqueName('bench-raw');
  const destination = `/queue/${queue}`;
  const payload = kibPayload();
  const queueHeaders = { durable: String(durable), 'auto-delete': 'false', exclusive: 'false' };
  const ferryReader = FrameImpl.fromRawFrame;
  FrameImpl.fromRawFrame = STOCK_FRAME_READER;
  const clients = [];
  const close = async () => {
    for (const client of clients.reverse()) {
      await within(client.deactivate(), 5_000, 'a STOMP DISCONNECT').catch(() => client.deactivate({ force: true }));
    }
    FrameImpl.fromRawFrame = ferryReader;
    await janitor.delete(queue);
  };
  try {
    const consumer = await stompClient(url);
    clients.push(consumer);
    await within(
      withReceipt(consumer, `sub-${queue}`, (receipt) =>
        consumer.subscribe(
          destination,
          (message) => {
            JSON.parse(message.body);
            onMessage();
            message.ack();
          },
          { ...queueHeaders, ack: 'client-individual', 'prefetch-count': String(concurrency), receipt },
        ),
      ),
      10_000,
      'a STOMP SUBSCRIBE receipt',
    );
    const publisher = await stompClient(url);
    clients.push(publisher);
    const headers = { ...queueHeaders, persistent: String(durable), 'content-type': 'application/json' };
    let sequence = 0;
    const publish = () =>
      withReceipt(publisher, `r-${++sequence}`, (receipt) =>
        publisher.publish({ destination, body: JSON.stringify(payload), headers: { ...headers, receipt } }),
      );
    return { publish, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

export async function run(ctx) {
  const url = ctx.urls.stomp;
  const amqpUrl = ctx.urls.amqp;
  ctx.section(SECTION, {
    title: `STOMP on RabbitMQ: Ferry vs @stomp/stompjs ${packageVersion('@stomp/stompjs')} over TCP`,
    description:
      '1 KiB JSON messages end to end (SEND → RECEIPT; MESSAGE → JSON.parse → handler → ACK), both subjects ' +
      'in the same run, interleaved per repetition. msg/s runs from the first SEND to the last handler; ' +
      'round trip is one message at a time, SEND until RECEIPT and handler both happened.',
    goals: true,
    notes: [
      'stompjs side: one connection to publish and one for the subscription (as Ferry), each a plain TCP ' +
        'socket with TCP_NODELAY adapted to stompjs, heart-beats 10 s; every SEND carries a `receipt` header ' +
        'and each publish lane awaits its RECEIPT (watchForReceipt) before the next; body `JSON.stringify(payload)`; ' +
        'SUBSCRIBE with `ack: client-individual` and `prefetch-count` = c; the callback JSON.parse-s the body, ' +
        'runs the handler, then ACKs.',
      'c=N: N publish lanes and prefetch-count = Ferry `concurrency` = N. transient: the queue is declared ' +
        '`durable:false`, `auto-delete:false`, `exclusive:false` on SEND and SUBSCRIBE and messages are ' +
        '`persistent:false` (what Ferry sends for `durable: false`); persistent: `durable:true`, ' +
        '`persistent:true`. Round trip uses a transient queue.',
      "Ferry replaces stompjs's header reader process-wide (packages/stomp/src/frames.ts); the stompjs side " +
        "runs with stompjs's own reader, swapped back in for its runs.",
      'Ferry also sends its CloudEvents headers (ce-id, ce-type, …, amqp-message-id, type, app-id) on every SEND.',
    ],
  });
  const janitor = new QueueJanitor(amqpUrl);
  try {
    await compareRabbitScenarios(ctx, {
      section: SECTION,
      rawName: RAW,
      url,
      janitor,
      openRaw: (durable, concurrency, onMessage) => openRaw(url, janitor, { durable, concurrency }, onMessage),
      c1Messages: 2_000,
    });
  } finally {
    await janitor.close();
  }
}
