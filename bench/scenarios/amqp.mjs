// AMQP on RabbitMQ: Ferry (@ferry/amqp) against amqplib used directly, in the same run, on the same broker.
//
// Both sides do the same work (see bench/lib/ferry.mjs and raw-common.mjs for the drivers): 1 KiB JSON
// messages, publish lanes that each await the broker's confirm before publishing the next, a consumer that
// decodes each message and acks it after the handler, with prefetch = concurrency. Both use two connections
// with TCP_NODELAY, one publishing and one consuming, as Ferry does.
// - raw amqplib: a confirm channel on the publishing connection; `sendToQueue(q, Buffer.from(JSON.stringify(
//   payload)), { persistent, contentType }, callback)`, resolved by the confirm callback; a channel with
//   `prefetch(concurrency)` on the consuming connection, `consume` in manual-ack mode, JSON.parse of the body,
//   the handler, then `ack`.
// - transient: a non-durable queue and non-persistent messages (delivery_mode 1), Ferry's `durable: false`;
//   persistent: a durable queue and persistent messages (delivery_mode 2), so RabbitMQ confirms each message
//   once it is on disk.
// - round trip: one message at a time on a transient queue, from publish until both the confirm arrived and
//   the handler ran.
// Every queue either side declared is deleted after its run.
import amqp from 'amqplib';
import { kibPayload, uniqueName } from '../lib/stats.mjs';
import { compareRabbitScenarios, packageVersion, QueueJanitor } from './raw-common.mjs';

export const name = 'amqp';

const SECTION = 'amqp';
const RAW = 'amqplib';
const SCENARIOS = 4;

export function steps(ctx) {
  return SCENARIOS * (ctx.warmup + ctx.reps);
}

/** The raw amqplib client: opens both connections, the consumer first, and returns `{ publish, close }`. */
async function openRaw(url, janitor, { durable, concurrency }, onMessage) {
  const queue = uniqueName('bench-raw');
  const payload = kibPayload();
  const consuming = await amqp.connect(url, { noDelay: true });
  let publishing;
  try {
    const sub = await consuming.createChannel();
    await sub.assertQueue(queue, { durable });
    await sub.prefetch(concurrency);
    await sub.consume(
      queue,
      (message) => {
        JSON.parse(message.content.toString());
        onMessage();
        sub.ack(message);
      },
      { noAck: false },
    );
    publishing = await amqp.connect(url, { noDelay: true });
    const pub = await publishing.createConfirmChannel();
    await pub.assertQueue(queue, { durable });
    const options = { persistent: durable, contentType: 'application/json' };
    const publish = () =>
      new Promise((resolve, reject) => {
        pub.sendToQueue(queue, Buffer.from(JSON.stringify(payload)), options, (error) =>
          error ? reject(error) : resolve(),
        );
      });
    const close = async () => {
      await publishing.close();
      await consuming.close();
      await janitor.delete(queue);
    };
    return { publish, close };
  } catch (error) {
    await publishing?.close().catch(() => undefined);
    await consuming.close().catch(() => undefined);
    await janitor.delete(queue).catch(() => undefined);
    throw error;
  }
}

export async function run(ctx) {
  const url = ctx.urls.amqp;
  ctx.section(SECTION, {
    title: `AMQP on RabbitMQ: Ferry vs amqplib ${packageVersion('amqplib')}`,
    description:
      '1 KiB JSON messages end to end (publish → confirm; consume → JSON.parse → handler → ack), both ' +
      'subjects in the same run, interleaved per repetition. msg/s runs from the first publish to the last ' +
      'handler; round trip is one message at a time, publish until confirm and handler both happened.',
    goals: true,
    notes: [
      'amqplib side: two connections with noDelay (TCP_NODELAY), as Ferry opens; a confirm channel, ' +
        '`sendToQueue(q, Buffer.from(JSON.stringify(payload)), { persistent, contentType }, cb)` per message, ' +
        'each publish lane awaiting its confirm callback before the next; the consumer channel has ' +
        '`prefetch(concurrency)`, manual ack, JSON.parse of the body, then the handler, then `ack`.',
      'c=N: N publish lanes and prefetch = Ferry `concurrency` = N. transient: non-durable queue and ' +
        'delivery_mode 1 (Ferry `queue(name, { durable: false })`); persistent: durable queue and delivery_mode 2, ' +
        'confirmed by RabbitMQ once on disk. Round trip uses a transient queue.',
      'Ferry also sends its CloudEvents headers (ce-id, ce-type, ce-source, …), message_id and the mandatory ' +
        'flag on every publish; the amqplib side sends only the body, content_type and delivery_mode.',
    ],
  });
  const janitor = new QueueJanitor(url);
  try {
    await compareRabbitScenarios(ctx, {
      section: SECTION,
      rawName: RAW,
      url,
      janitor,
      openRaw: (durable, concurrency, onMessage) => openRaw(url, janitor, { durable, concurrency }, onMessage),
      c1Messages: 3_000,
    });
  } finally {
    await janitor.close();
  }
}
