// Ferry's side of every end-to-end transport scenario, the same code for every URL. The raw-client drivers in
// bench/scenarios/<transport>.mjs do exactly the same work with the bare library, so the two can be divided:
//
// - throughput: a consumer subscribes first (MQTT keeps nothing for a queue nobody subscribed to), then
//   `window` publish lanes each publish, await the confirmation, and publish the next, until `n` messages went;
//   the clock runs from the first publish to the last message's handler; msg/s = n / that time.
// - latency: one message at a time; a sample is from calling publish until both the confirmation arrived and
//   the handler ran (whichever is later).
//
// Payloads are the same 1 KiB JSON object; Ferry encodes and decodes it, the raw drivers JSON.stringify and
// JSON.parse it per message as an application would.
import { connect, queue } from '@ferry/core';
import { deferred, kibPayload, latencySummary, nowNs, uniqueName, within } from './stats.mjs';

/** Runs `lanes` concurrent publish loops until `n` messages were published; `publishOne(i)` returns a promise. */
export async function publishLanes(n, lanes, publishOne) {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await publishOne(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, n) }, lane));
}

/**
 * One throughput measurement through Ferry. Returns `{ 'msg/s': … }` and the queue name used (for cleanup).
 * `durable: false` asks for a transient queue with non-persistent messages.
 */
export async function ferryThroughput({ url, options, n, window, concurrency, durable = true, timeoutMs = 120_000 }) {
  const broker = await connect(url, { source: 'bench', ...options });
  const name = uniqueName('bench');
  const q = queue(name, { durable });
  const payload = kibPayload();
  const done = deferred();
  let received = 0;
  try {
    const consumer = broker.consumer();
    await consumer.subscribe(
      q,
      () => {
        if (++received === n) done.resolve();
      },
      { concurrency },
    );
    const producer = broker.producer();
    const start = nowNs();
    await publishLanes(n, window, () => producer.publish(q, { type: 'bench.message', data: payload }));
    await within(done.promise, timeoutMs, `${n} messages through Ferry on ${broker.transport}`);
    const seconds = (nowNs() - start) / 1e9;
    return { metrics: { 'msg/s': n / seconds }, queue: name };
  } finally {
    await broker.close();
  }
}

/** One latency measurement through Ferry: `n` sequential round trips, as p50/p99/p999 in µs. */
export async function ferryLatency({ url, options, n, durable = true, timeoutMs = 10_000 }) {
  const broker = await connect(url, { source: 'bench', ...options });
  const name = uniqueName('bench-rt');
  const q = queue(name, { durable });
  const payload = kibPayload();
  let arrived = deferred();
  const samples = [];
  try {
    const consumer = broker.consumer();
    await consumer.subscribe(q, () => arrived.resolve());
    const producer = broker.producer();
    for (let i = 0; i < n; i++) {
      arrived = deferred();
      const start = nowNs();
      await within(
        Promise.all([producer.publish(q, { type: 'bench.message', data: payload }), arrived.promise]),
        timeoutMs,
        `a round trip through Ferry on ${broker.transport}`,
      );
      samples.push(nowNs() - start);
    }
    return { metrics: latencySummary(samples), queue: name };
  } finally {
    await broker.close();
  }
}
