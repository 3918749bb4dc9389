// Ferry against its peers on the shared RabbitMQ: end-to-end events/s and round-trip latency of 1 KiB
// JSON events for amqplib by hand (the baseline), Ferry on AMQP, NestJS 12 microservices (Transport.RMQ)
// and Moleculer 0.14 (AMQP transporter).
//
// Method, the same for every subject:
// - throughput: the consumer is running; 100 publish lanes each emit, await what the library's emit
//   returns, and emit the next, until N events went; the clock runs from the first emit to the N-th
//   handler call; events/s = N / that time. Set-up (connections, queues, discovery) is outside the clock.
//   Ferry uses the shared driver (bench/lib/ferry.mjs: one broker, concurrency 100 = prefetch).
// - latency: one event at a time; a sample runs from calling emit until both emit's promise resolved
//   and the handler ran.
// - every subject: a durable queue, persistent messages, ack after the handler, at most 100
//   unacknowledged deliveries, TCP_NODELAY on every socket. What emit's promise means differs and is in
//   the notes (Moleculer's resolves without any broker confirmation).
// - all subjects are set up first; each repetition then measures every subject in turn, starting with a
//   different one each time, so that load from elsewhere on the machine hits them alike. Medians.
// Queue, namespace and exchange names are unique per run and deleted at the end.
import amqplib from 'amqplib';
import { ferryLatency, ferryThroughput, publishLanes } from '../lib/ferry.mjs';
import { deferred, kibPayload, latencySummary, median, nowNs, uniqueName, waitFor, within } from '../lib/stats.mjs';
import { amqplibPeer } from './peers-amqplib.mjs';

export const name = 'peers';

const WINDOW = 100;
const PREFETCH = 100;
const SECTION = 'peers';
const LATENCY_METRICS = ['p50 µs', 'p99 µs', 'p999 µs'];

export function steps(ctx) {
  return 1 + 2 * (ctx.warmup + ctx.reps); // set-up, then every repetition of throughput and of latency
}

/** N events through a peer with WINDOW lanes: events/s. */
async function peerThroughput(peer, n, what) {
  const payload = kibPayload();
  const done = deferred();
  let received = 0;
  peer.onEvent = () => {
    if (++received === n) done.resolve();
  };
  const start = nowNs();
  await publishLanes(n, WINDOW, () => peer.emit(payload));
  await within(done.promise, 120_000, `${n} events through ${what}`);
  return { 'events/s': n / ((nowNs() - start) / 1e9) };
}

/** `n` sequential round trips through a peer: p50/p99/p999 µs. */
async function peerLatency(peer, n, what) {
  const payload = kibPayload();
  let arrived = deferred();
  peer.onEvent = () => arrived.resolve();
  const samples = [];
  for (let i = 0; i < n; i++) {
    arrived = deferred();
    const start = nowNs();
    await within(Promise.all([peer.emit(payload), arrived.promise]), 10_000, `a round trip through ${what}`);
    samples.push(nowNs() - start);
  }
  return latencySummary(samples);
}

/**
 * Emits probe events until one arrives, then one last probe and waits for it: the consumer side is
 * really consuming, and no probe is still on its way when the measurement starts. (Moleculer loses
 * events emitted right after waitForServices() resolved: its balanced event queue is declared without
 * being awaited, and a publish to a queue that does not exist yet is dropped, unconfirmed.)
 */
async function ready(peer, what) {
  let arrived = 0;
  let last = false;
  peer.onEvent = (data) => {
    arrived++;
    if (data?.probe === 'last') last = true;
  };
  const deadline = Date.now() + 15_000;
  for (let i = 1; arrived === 0; i++) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} delivered no probe event within 15 s`);
    await peer.emit({ probe: i });
    await waitFor(() => arrived > 0, { timeoutMs: 200, what: `a probe through ${what}` }).catch(() => undefined);
  }
  await peer.emit({ probe: 'last' });
  await waitFor(() => last, { timeoutMs: 10_000, what: `the last probe through ${what}` });
}

/** A library peer (emit/onEvent/close) as a subject: set up, checked with probes, measured by the shared loops. */
function librarySubject(what, make) {
  return async () => {
    const peer = await make();
    try {
      await ready(peer, what);
    } catch (error) {
      await peer.close().catch(() => undefined);
      throw error;
    }
    return {
      throughput: (n) => peerThroughput(peer, n, what),
      latency: (n) => peerLatency(peer, n, what),
      close: () => peer.close(),
    };
  };
}

/** Deletes what the subjects left on RabbitMQ; deleting a queue or exchange that is gone is not an error. */
async function cleanUp(url, queues, exchanges) {
  const connection = await amqplib.connect(url, { noDelay: true });
  try {
    const channel = await connection.createChannel();
    for (const queueName of queues) await channel.deleteQueue(queueName);
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/**
 * Warm-up and repetitions of `measure(subject)` over every live subject, rotating which goes first.
 * Returns per subject id the list of measured results. A subject that fails is logged and dropped.
 */
async function interleaved(ctx, live, label, measure, failures) {
  const results = new Map(live.map((s) => [s.id, []]));
  const total = ctx.warmup + ctx.reps;
  for (let i = 0; i < total; i++) {
    const warm = i < ctx.warmup;
    ctx.step(`peers: ${label}, ${warm ? 'warm-up' : `repetition ${i - ctx.warmup + 1}/${ctx.reps}`}`);
    const order = live.map((_, k) => live[(k + i) % live.length]);
    for (const subject of order) {
      if (subject.failed) continue;
      try {
        const result = await measure(subject);
        if (!warm) results.get(subject.id).push(result);
      } catch (error) {
        subject.failed = true;
        failures.push(`${subject.what} (${label}): ${error?.message ?? error}`);
        ctx.log(`peers: ${subject.what} failed during ${label}: ${error?.stack ?? error}`);
      }
    }
  }
  return results;
}

export async function run(ctx) {
  const url = ctx.urls.amqp;
  const n = ctx.scale(15_000, 1_000);
  const rt = ctx.scale(1_000, 100);
  ctx.section(SECTION, {
    title: 'Peers on RabbitMQ: amqplib, Ferry, NestJS, Moleculer',
    description:
      `1 KiB JSON events end to end through the shared RabbitMQ. Throughput: ${WINDOW} emits in flight, each lane ` +
      `awaiting what emit returns before the next; the clock stops at the last handler call. Round trip: one event ` +
      `at a time, from emit until emit resolved and the handler ran. Every subject: durable queue, persistent ` +
      `messages, ack after the handler, prefetch ${PREFETCH}, TCP_NODELAY. Each repetition measures every subject ` +
      `in turn (rotating the order).`,
    notes: [
      'What "emit resolved" means: amqplib, Ferry and NestJS wait for the publisher confirm (NestJS through ' +
        "amqp-connection-manager's confirm channel); Moleculer's AMQP transporter publishes on a plain channel and " +
        'resolves at once, with no confirm and no flow control, so its window of 100 bounds nothing.',
      'amqplib 2.3.1 by hand: a confirm channel on one connection publishes, a channel on a second connection ' +
        'consumes with manual ack after the handler; JSON per message. Ferry: one broker (one connection) publishes ' +
        'and consumes.',
      'NestJS 12 (@nestjs/microservices, Transport.RMQ): a microservice with an @EventPattern handler that acks ' +
        'through the RmqContext (noAck: false), ClientProxy.emit() awaited with lastValueFrom; queueOptions durable, ' +
        'persistent: true, prefetchCount 100; client and server on separate connections.',
      'Moleculer 0.14.36 (AMQP transporter): two ServiceBrokers (one emits, one has the service with the event ' +
        "handler), disableBalancer: true so events go through RabbitMQ's durable balanced queue and are acked after " +
        "the handler (Moleculer's default balancer sends them to a per-node queue consumed without acks); prefetch " +
        '100, persistent messages, internal $node services off.',
      'NestJS and Moleculer load the amqplib they resolve (0.10.9 in this install); amqplib and Ferry use 2.3.1.',
    ],
  });

  const runId = uniqueName('bench-peers');
  const queues = [];
  const exchanges = [];
  const failures = [];
  const subjects = [
    {
      id: 'amqplib',
      what: 'amqplib',
      baseline: true,
      setup: librarySubject('amqplib', () => {
        queues.push(`${runId}-amqplib`);
        return amqplibPeer({ url, queue: `${runId}-amqplib`, prefetch: PREFETCH });
      }),
    },
    {
      id: 'ferry',
      what: 'Ferry on AMQP',
      setup: async () => ({
        throughput: async (count) => {
          const result = await ferryThroughput({ url, n: count, window: WINDOW, concurrency: PREFETCH });
          queues.push(result.queue);
          return { 'events/s': result.metrics['msg/s'] };
        },
        latency: async (count) => {
          const result = await ferryLatency({ url, n: count });
          queues.push(result.queue);
          return result.metrics;
        },
        close: async () => undefined,
      }),
    },
    {
      id: 'nestjs',
      what: 'NestJS RMQ',
      setup: librarySubject('NestJS RMQ', async () => {
        const { nestPeer } = await import('./peers-nest.mjs');
        queues.push(`${runId}-nest`);
        return nestPeer({ url, queue: `${runId}-nest`, prefetch: PREFETCH });
      }),
    },
    {
      id: 'moleculer',
      what: 'Moleculer AMQP',
      setup: librarySubject('Moleculer AMQP', async () => {
        const { moleculerPeer } = await import('./peers-moleculer.mjs');
        const peer = await moleculerPeer({ url, namespace: runId, prefetch: PREFETCH });
        queues.push(...peer.queues);
        exchanges.push(...peer.exchanges);
        return peer;
      }),
    },
  ];

  const live = [];
  try {
    ctx.step('peers: setting up amqplib, Ferry, NestJS, Moleculer');
    for (const subject of subjects) {
      try {
        live.push({ ...subject, ...(await subject.setup()) });
      } catch (error) {
        failures.push(`${subject.what} (set-up): ${error?.message ?? error}`);
        ctx.log(`peers: ${subject.what} failed to set up: ${error?.stack ?? error}`);
      }
    }
    const throughput = await interleaved(ctx, live, 'throughput', (s) => s.throughput(n), failures);
    const latency = await interleaved(ctx, live, 'round trip', (s) => s.latency(rt), failures);
    for (const subject of live) {
      const tp = throughput.get(subject.id);
      if (tp.length === ctx.reps) {
        ctx.record({
          section: SECTION,
          scenario: `throughput, ${n.toLocaleString('en-US')} events`,
          subject: subject.id,
          baseline: subject.baseline,
          metrics: { 'events/s': median(tp.map((r) => r['events/s'])) },
          runs: tp,
        });
      }
    }
    for (const subject of live) {
      const lat = latency.get(subject.id);
      if (lat.length === ctx.reps) {
        ctx.record({
          section: SECTION,
          scenario: `round trip, ${rt.toLocaleString('en-US')} sequential`,
          subject: subject.id,
          baseline: subject.baseline,
          metrics: Object.fromEntries(LATENCY_METRICS.map((m) => [m, median(lat.map((r) => r[m]))])),
          runs: lat,
        });
      }
    }
  } finally {
    for (const subject of live) await subject.close().catch(() => undefined);
    const dlqs = queues.filter((q) => !q.startsWith('MOL-')).map((q) => `${q}.dlq`);
    await cleanUp(url, [...queues, ...dlqs], exchanges);
  }
  if (failures.length > 0) throw new Error(`peers: ${failures.join('; ')}`);
}
