// Heap after N messages through each transport via Ferry (memory, AMQP, MQTT, STOMP).
//
// Method: each transport runs in its own child process (bench/scenarios/heap-child.mjs, started with
// `--expose-gc`), isolated from the rest of the bench. The child warms up (connect, 1,000 messages, close),
// then pushes N messages of 1 KiB JSON through one broker: 200 publish lanes (publishLanes), a consumer
// with concurrency 100 on a transient queue (`durable: false`). heapUsed is sampled right after a forced
// full GC: before the run, at each quarter of it, after the last message, and after close(). The report
// shows heap before / the highest sample / after close, 'retained KiB' (after − before) and the msg/s
// of that sustained run (the GC pauses at the quarters are not counted). One run per transport, no
// repetitions: the heap figures are the point, the rate is a by-product.
//
// N: FERRY_BENCH_HEAP_MESSAGES sets every transport's N, FERRY_BENCH_HEAP_MESSAGES_<TRANSPORT> (MEMORY,
// AMQP, MQTT, STOMP) one transport's; --quick uses 20,000. The default is 1,000,000 on every transport, as
// issue 10 asks; at this machine's rates (memory ~60k msg/s, AMQP and MQTT ~14k, STOMP ~6k) that is about
// 5 minutes of the 10-minute default run, most of it STOMP.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { deferred, uniqueName, within } from '../lib/stats.mjs';

export const name = 'heap';

/** Default N per transport in the default run. */
const DEFAULT_MESSAGES = { memory: 1_000_000, amqp: 1_000_000, mqtt: 1_000_000, stomp: 1_000_000 };
const QUICK_MESSAGES = 20_000;
const WINDOW = 200;
const CONCURRENCY = 100;
/** Published but not yet handled, at most (see heap-child.mjs): below Mosquitto's 1000 queued per client. */
const BACKLOG = 800;
const MiB = 1024 * 1024;

const child = fileURLToPath(new URL('./heap-child.mjs', import.meta.url));

function transports(ctx) {
  return [
    { id: 'memory', url: `memory://${uniqueName('bench-heap')}` },
    { id: 'amqp', url: ctx.urls.amqp },
    { id: 'mqtt', url: ctx.urls.mqtt },
    { id: 'stomp', url: ctx.urls.stomp },
  ];
}

/** N for one transport: the per-transport variable, else the global one, else the default (quick: 20,000). */
export function messagesFor(ctx, id) {
  const own = process.env[`FERRY_BENCH_HEAP_MESSAGES_${id.toUpperCase()}`];
  const all = process.env.FERRY_BENCH_HEAP_MESSAGES;
  const value = Number(own ?? all ?? (ctx.quick ? QUICK_MESSAGES : DEFAULT_MESSAGES[id]));
  if (!Number.isInteger(value) || value < 4) throw new Error(`bench heap: bad message count for ${id}: ${value}`);
  return value;
}

export function steps() {
  return 4;
}

/** Runs the child for one transport; resolves with its report. Kills it (by its pid) if it overruns. */
async function runChild(ctx, transport, n) {
  // Generous: the slowest transport at 2,000 msg/s, plus start-up and warm-up.
  const timeoutMs = 60_000 + Math.ceil(n / 2_000) * 1_000;
  const config = { url: transport.url, n, window: WINDOW, concurrency: CONCURRENCY, backlog: BACKLOG, timeoutMs };
  const proc = fork(child, [JSON.stringify(config)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const result = deferred();
  proc.on('message', (message) => {
    if (message.progress !== undefined) ctx.status(`heap: ${transport.id}, ${message.progress}`);
    else result.resolve(message);
  });
  proc.on('exit', (code, signal) => {
    if (code !== 0) result.reject(new Error(`bench heap: the ${transport.id} child exited with ${code ?? signal}`));
  });
  try {
    return await within(result.promise, timeoutMs + 30_000, `the heap run on ${transport.id}`);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill();
  }
}

/** Deletes the queues the runs left on RabbitMQ (AMQP and STOMP queues live there). */
async function deleteQueues(url, names) {
  const connection = await amqplib.connect(url, { noDelay: true });
  try {
    const channel = await connection.createChannel();
    for (const queueName of names) {
      await channel.deleteQueue(queueName);
      await channel.deleteQueue(`${queueName}.dlq`);
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}

export async function run(ctx) {
  ctx.section('heap', {
    title: 'Heap after N messages through Ferry',
    description:
      `Each transport in its own child process (\`--expose-gc\`): a warm-up, then N messages of 1 KiB JSON through ` +
      `one broker (${WINDOW} publish lanes, consumer concurrency ${CONCURRENCY}, transient queue). heapUsed is ` +
      `sampled after a forced GC before the run, at each quarter, after the last message and after close(); ` +
      `"peak" is the highest sample, "retained" is after close − before. One sustained run per transport.`,
    notes: [
      `N per transport: FERRY_BENCH_HEAP_MESSAGES (all) or FERRY_BENCH_HEAP_MESSAGES_<MEMORY|AMQP|MQTT|STOMP>; ` +
        `defaults ${Object.entries(DEFAULT_MESSAGES)
          .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
          .join(', ')} (quick: ${QUICK_MESSAGES.toLocaleString('en-US')}).`,
      'A closing producer drops its idle publish-deadline buckets (one per 50 ms of publishing, at most 600 with the ' +
        'default 30 s publishTimeout), which before that fix lingered until their timers fired.',
      `Publish lanes pause while more than ${BACKLOG} messages are published but not yet handled (Mosquitto drops ` +
        `QoS 1 messages queued beyond max_queued_messages, 1000 by default); the bound is the same on every transport.`,
    ],
  });
  const rabbitQueues = [];
  try {
    for (const transport of transports(ctx)) {
      const n = messagesFor(ctx, transport.id);
      ctx.step(`heap: ${transport.id}, ${n.toLocaleString('en-US')} messages`);
      const report = await runChild(ctx, transport, n);
      if (transport.id === 'amqp' || transport.id === 'stomp') rabbitQueues.push(...report.queues);
      const s = report.samples;
      const all = [s.before, s.q1, s.q2, s.q3, s.end, s.after].filter((v) => typeof v === 'number');
      ctx.record({
        section: 'heap',
        scenario: `${transport.id}, ${n.toLocaleString('en-US')} messages`,
        subject: 'ferry',
        metrics: {
          'msg/s': n / report.seconds,
          'heap before MiB': s.before / MiB,
          'heap peak MiB': Math.max(...all) / MiB,
          'heap after MiB': s.after / MiB,
          'retained KiB': (s.after - s.before) / 1024,
        },
        runs: [{ samplesMiB: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v / MiB])) }],
      });
      ctx.log(
        `heap: ${transport.id} ${n} msgs at ${Math.round(n / report.seconds)} msg/s; heap MiB ` +
          Object.entries(s)
            .map(([k, v]) => `${k} ${(v / MiB).toFixed(1)}`)
            .join(', '),
      );
    }
  } finally {
    if (rabbitQueues.length > 0) await deleteQueues(ctx.urls.amqp, rabbitQueues);
  }
}
