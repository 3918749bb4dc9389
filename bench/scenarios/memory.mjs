// Core overhead on the in-process transport: what Ferry's pipeline (envelope, codec, middleware,
// tracing no-op, settlement) costs per message when the "broker" costs nothing.
// Run: npm run bench (builds first). Figures move ±10 % between runs; compare within one run.
import { connect, memoryHub, queue } from '@ferry/core';

const N = Number(process.env.BENCH_MESSAGES ?? 50_000);
const payload = { orderId: 'o-1', customer: 'c-42', total: 12.5, items: [{ sku: 'x', qty: 2 }], note: 'x'.repeat(900) };

async function timed(label, fn) {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const start = process.hrtime.bigint();
    await fn(i);
    runs.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  runs.sort((a, b) => a - b);
  const median = runs[1];
  console.log(
    `${label.padEnd(58)} ${Math.round(N / median)
      .toLocaleString('en-US')
      .padStart(9)} msg/s  (${((median * 1e6) / N).toFixed(2)} µs/msg)`,
  );
}

await timed('floor: JSON.stringify + Buffer.from + JSON.parse only', async () => {
  let sink = 0;
  for (let i = 0; i < N; i++) sink += JSON.parse(Buffer.from(JSON.stringify(payload)).toString()).total;
  if (sink === 0) throw new Error('unreachable');
});

const broker = await connect('memory://bench', { source: 'bench' });
const producer = broker.producer();

await timed('publish, awaited one by one (1 KiB JSON)', async (run) => {
  const q = queue(`bench-seq-${run}`);
  for (let i = 0; i < N; i++) await producer.publish(q, { type: 'order.placed', data: payload });
  memoryHub('bench').deleteQueue(q.name);
});

await timed('publish, 100 in flight', async (run) => {
  const q = queue(`bench-par-${run}`);
  for (let i = 0; i < N; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, N - i) }, () => producer.publish(q, { type: 'order.placed', data: payload })),
    );
  }
  memoryHub('bench').deleteQueue(q.name);
});

for (const concurrency of [1, 50]) {
  await timed(`end to end (publish → decode → handler → ack), concurrency ${concurrency}`, async (run) => {
    const q = queue(`bench-e2e-${concurrency}-${run}`);
    let received = 0;
    let done;
    const finished = new Promise((resolve) => (done = resolve));
    const consumer = broker.consumer();
    await consumer.subscribe(
      q,
      () => {
        if (++received === N) done();
      },
      { concurrency },
    );
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, N - i) }, () =>
          producer.publish(q, { type: 'order.placed', data: payload }),
        ),
      );
    }
    await finished;
    await consumer.close();
  });
}

await broker.close();
