// Child process of the memory scenario: heap bytes allocated per message, publish → handler on the memory
// transport, with a young generation large enough that no GC runs while the messages flow (the parent
// starts it with --min-semi-space-size / --max-semi-space-size); prints one JSON line.
import { PerformanceObserver } from 'node:perf_hooks';
import { connect, queue } from '@ferry/core';
import { publishLanes } from '../lib/ferry.mjs';
import { deferred, kibPayload } from '../lib/stats.mjs';

const count = Number(process.argv[2] ?? 20_000);
let gcs = 0;
const observer = new PerformanceObserver((list) => (gcs += list.getEntries().length));

const payload = kibPayload();
const broker = await connect('memory://allocation', { source: 'bench' });
const producer = broker.producer();
const q = queue('allocation', { durable: false });
let received = 0;
let done = deferred();
let target = 0;
await broker.consumer().subscribe(
  q,
  () => {
    if (++received === target) done.resolve();
  },
  { concurrency: 100 },
);

async function messages(n) {
  received = 0;
  target = n;
  done = deferred();
  await publishLanes(n, 100, () => producer.publish(q, { type: 'bench.message', data: payload }));
  await done.promise;
}

function measure(run) {
  globalThis.gc();
  gcs = 0;
  observer.observe({ entryTypes: ['gc'] });
  const before = process.memoryUsage().heapUsed;
  return run().then(() => {
    const after = process.memoryUsage().heapUsed;
    observer.disconnect();
    return (after - before) / count;
  });
}

await messages(2_000); // warm up: compiled code, pools, the queue's structures
const ferry = await measure(() => messages(count));
const ferryGcs = gcs;
const floor = await measure(async () => {
  let sink = 0;
  for (let i = 0; i < count; i++) sink += JSON.parse(Buffer.from(JSON.stringify(payload)).toString()).seq;
  return sink;
});
await broker.close();
process.stdout.write(`${JSON.stringify({ ferry, floor, gcs: ferryGcs + gcs, count })}\n`);
