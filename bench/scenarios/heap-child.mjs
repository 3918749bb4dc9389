// The child process of the heap scenario (bench/scenarios/heap.mjs), started with `--expose-gc` once per
// transport so that its heap holds nothing but this run. It pushes N messages through Ferry on one broker
// URL and reports heapUsed samples taken right after a forced full GC (`global.gc()`):
//
//   before   after a short warm-up run (connect, 1,000 messages, close) and GC: modules, codecs and one-time
//            caches are loaded, so what grows later grows because of the N messages;
//   q1..q3   when a quarter, a half and three quarters of the messages were handled (the GC pause is
//            excluded from the clock);
//   end      once the last message was handled, the broker still open;
//   after    after broker.close() and GC.
//
// The run: one broker, a transient queue (`durable: false`), a consumer with `concurrency` handlers,
// and `window` publish lanes (bench/lib/ferry.mjs publishLanes). A lane also waits while more than
// `backlog` messages are published but not yet handled, so a consumer that falls behind is never
// flooded past what the broker keeps (Mosquitto drops QoS 1 messages beyond `max_queued_messages`,
// 1000 by default); the same bound holds on every transport.
//
// Input: one JSON argument { url, n, window, concurrency, backlog, timeoutMs, options }. Output over IPC:
// { progress } at each quarter, then { samples: { before, q1, q2, q3, end, after } (bytes), seconds, n,
// queues, transport }.
import { connect, deleteMemoryHub, queue } from '@ferry/core';
import { publishLanes } from '../lib/ferry.mjs';
import { deferred, kibPayload, nowNs, uniqueName, within } from '../lib/stats.mjs';

const config = JSON.parse(process.argv[2]);
const { url, n, window, concurrency, backlog, timeoutMs, options = {} } = config;
if (typeof globalThis.gc !== 'function') throw new Error('heap-child: run me with --expose-gc');

function heapAfterGc() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** One run of `count` messages through a fresh broker; `onQuarter(k)` is called at k/4 of the messages. */
async function run(count, onQuarter) {
  const broker = await connect(url, { source: 'bench-heap', ...options });
  const name = uniqueName('bench-heap');
  const q = queue(name, { durable: false });
  const payload = kibPayload();
  const done = deferred();
  const quarters = [Math.floor(count / 4), Math.floor(count / 2), Math.floor((3 * count) / 4)];
  let received = 0;
  let published = 0;
  /** Open while the backlog is full; the handler resolves it once the consumer caught up. */
  let gate;
  let pausedNs = 0;
  let result;
  try {
    await broker.consumer().subscribe(
      q,
      () => {
        received++;
        if (gate !== undefined && published - received < backlog) {
          gate.resolve();
          gate = undefined;
        }
        const k = quarters.indexOf(received);
        if (k >= 0 && onQuarter) {
          const start = nowNs();
          onQuarter(k);
          pausedNs += nowNs() - start;
        }
        if (received === count) done.resolve();
      },
      { concurrency },
    );
    const producer = broker.producer();
    const start = nowNs();
    await publishLanes(count, window, async () => {
      while (published - received >= backlog) {
        gate ??= deferred();
        await within(gate.promise, timeoutMs, `the consumer to catch up on ${url.split(':')[0]}`);
      }
      published++;
      await producer.publish(q, { type: 'bench.heap', data: payload });
    });
    await within(done.promise, timeoutMs, `${count} messages through Ferry on ${broker.transport}`);
    const seconds = (nowNs() - start - pausedNs) / 1e9;
    result = { seconds, queue: name, transport: broker.transport };
  } finally {
    if (!result) await broker.close().catch(() => undefined);
  }
  return { broker, ...result };
}

// Warm-up: load every module and one-time cache the measured run will use.
const warm = await run(Math.min(1_000, n));
await warm.broker.close();
const queues = [warm.queue];

const samples = { before: heapAfterGc() };
const measured = await run(n, (k) => {
  samples[`q${k + 1}`] = heapAfterGc();
  process.send({ progress: `${k + 1}/4 of ${n.toLocaleString('en-US')}` });
});
queues.push(measured.queue);
samples.end = heapAfterGc();
await measured.broker.close();
if (url.startsWith('memory:')) deleteMemoryHub(new URL(url).hostname);
samples.after = heapAfterGc();

process.send({ samples, seconds: measured.seconds, n, queues, transport: measured.transport }, () => process.exit(0));
