// The raw-client side shared by the transport-vs-raw scenarios (amqp.mjs, mqtt.mjs, stomp.mjs), and the
// driver that runs Ferry and the raw client in the same run and records both rows.
//
// The raw drivers here do exactly what bench/lib/ferry.mjs does with Ferry, with the bare library:
// - throughput: the consumer is set up first; then `lanes` publish loops (publishLanes, the same function
//   Ferry's side uses) each publish one message, await the broker's confirmation, and publish the next,
//   until `n` went; the clock runs from the first publish to the last message's handler: msg/s = n / time.
// - latency: one message at a time; a sample runs from calling publish until both the confirmation arrived
//   and the handler ran.
// Each transport module supplies `open(onMessage)`: it connects, sets the consumer up so that every delivery
// is JSON.parse'd, then `onMessage()` is called (the handler), then the delivery is acknowledged; it returns
// `{ publish(), close() }`, where `publish()` JSON.stringify's the 1 KiB payload and resolves on the broker's
// confirmation. Setup and teardown are outside the clock on both sides.
//
// `compare()` interleaves the two subjects inside each repetition (Ferry first on even repetitions, the raw
// client first on odd ones), so that drift in the machine's load hits both alike, and reports medians.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import amqp from 'amqplib';
import { ferryLatency, ferryThroughput, publishLanes } from '../lib/ferry.mjs';
import { deferred, latencySummary, nowNs, repeat, within } from '../lib/stats.mjs';

/** One raw throughput measurement; `open(onMessage)` is the transport's raw client (see above). */
export async function rawThroughput({ what, n, lanes, open, timeoutMs = 60_000 }) {
  const done = deferred();
  let received = 0;
  const side = await open(() => {
    if (++received === n) done.resolve();
  });
  try {
    const start = nowNs();
    await publishLanes(n, lanes, side.publish);
    await within(done.promise, timeoutMs, `${n} messages through ${what}`);
    return { 'msg/s': n / ((nowNs() - start) / 1e9) };
  } finally {
    await side.close();
  }
}

/** One raw latency measurement: `n` sequential round trips, as p50/p99/p999 in µs. */
export async function rawLatency({ what, n, open, timeoutMs = 10_000 }) {
  let arrived = deferred();
  const side = await open(() => arrived.resolve());
  const samples = [];
  try {
    for (let i = 0; i < n; i++) {
      arrived = deferred();
      const start = nowNs();
      await within(Promise.all([side.publish(), arrived.promise]), timeoutMs, `a round trip through ${what}`);
      samples.push(nowNs() - start);
    }
    return latencySummary(samples);
  } finally {
    await side.close();
  }
}

/**
 * Runs one scenario for Ferry and for the raw client (`ferry()` and `raw()` each return one measurement's
 * metrics) with `repeat()`: warm-up, then `ctx.reps` repetitions, each running both subjects back to back,
 * and records one row per subject with the medians (the raw client's row is the baseline).
 */
export async function compare(ctx, { section, scenario, rawName, ferry, raw, ferryNote, rawNote }) {
  const subjects = { ferry, raw };
  const { metrics: all, runs } = await repeat({
    reps: ctx.reps,
    warmup: ctx.warmup,
    once: async (i) => {
      const which = i < 0 ? 'warm-up' : `rep ${i + 1}/${ctx.reps}`;
      const order = Math.abs(i) % 2 === 0 ? ['ferry', 'raw'] : ['raw', 'ferry'];
      const out = {};
      for (const subject of order) {
        ctx.status(`${section} · ${scenario} · ${subject === 'ferry' ? 'ferry' : rawName} · ${which}`);
        const metrics = await subjects[subject]();
        for (const [key, value] of Object.entries(metrics)) out[`${subject}\u0000${key}`] = value;
      }
      ctx.step(`${section} · ${scenario} · ${which} done`);
      return out;
    },
  });
  for (const subject of ['ferry', 'raw']) {
    const prefix = `${subject}\u0000`;
    const metrics = unprefixed(all, prefix);
    const mine = runs.map((run) => unprefixed(run, prefix));
    const note = subject === 'ferry' ? ferryNote : rawNote;
    ctx.record({
      section,
      scenario,
      subject: subject === 'ferry' ? 'ferry' : rawName,
      ...(subject === 'raw' ? { baseline: true } : {}),
      metrics,
      runs: mine,
      ...(note ? { note } : {}),
    });
    ctx.log(
      `${section} · ${scenario} · ${subject === 'ferry' ? 'ferry' : rawName}: ` +
        Object.entries(metrics)
          .map(([k, v]) => `${Math.round(v).toLocaleString('en-US')} ${k}`)
          .join(', '),
    );
  }
}

/**
 * The four scenarios of a RabbitMQ transport section (AMQP, STOMP), Ferry against the raw client: end to end
 * transient and persistent at c=100, transient at c=1 (`c1Messages` messages), and the sequential round trip
 * on a transient queue. `openRaw(durable, concurrency, onMessage)` opens the raw client's side; every queue
 * either side made is deleted through `janitor`.
 */
export async function compareRabbitScenarios(ctx, { section, rawName, url, janitor, openRaw, c1Messages }) {
  const e2e = [
    { scenario: 'e2e transient, c=100', durable: false, concurrency: 100, n: ctx.scale(10_000, 1_000) },
    { scenario: 'e2e persistent, c=100', durable: true, concurrency: 100, n: ctx.scale(10_000, 1_000) },
    { scenario: 'e2e transient, c=1', durable: false, concurrency: 1, n: ctx.scale(c1Messages, 200) },
  ];
  for (const { scenario, durable, concurrency, n } of e2e) {
    await compare(ctx, {
      section,
      scenario,
      rawName,
      ferry: async () => {
        const result = await ferryThroughput({
          url,
          options: {},
          n,
          window: concurrency,
          concurrency,
          durable,
          timeoutMs: 60_000,
        });
        await janitor.delete(result.queue);
        return result.metrics;
      },
      raw: () =>
        rawThroughput({
          what: rawName,
          n,
          lanes: concurrency,
          open: (onMessage) => openRaw(durable, concurrency, onMessage),
        }),
    });
  }
  const n = ctx.scale(2_000, 200);
  await compare(ctx, {
    section,
    scenario: 'round trip',
    rawName,
    ferry: async () => {
      const result = await ferryLatency({ url, options: {}, n, durable: false });
      await janitor.delete(result.queue);
      return result.metrics;
    },
    raw: () => rawLatency({ what: rawName, n, open: (onMessage) => openRaw(false, 1, onMessage) }),
  });
}

/** The entries of `object` whose key starts with `prefix`, without it. */
function unprefixed(object, prefix) {
  return Object.fromEntries(
    Object.entries(object)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
}

/** A TCP socket to `host:port` with Nagle's algorithm off (TCP_NODELAY), for clients that have no option for it. */
export function noDelaySocket(host, port) {
  const socket = netConnect({ host, port });
  socket.setNoDelay(true);
  return socket;
}

/**
 * Deletes RabbitMQ queues over one amqplib connection of its own (for the queues Ferry and the raw clients
 * created on AMQP and STOMP). Deleting a queue that does not exist is not an error in RabbitMQ 3.10.
 */
export class QueueJanitor {
  #url;
  #connection;
  #channel;

  constructor(url) {
    this.#url = url;
  }

  async delete(...names) {
    for (const name of names) {
      if (this.#channel === undefined) {
        this.#connection ??= await amqp.connect(this.#url, { noDelay: true });
        this.#channel = await this.#connection.createChannel();
        this.#channel.on('error', () => undefined);
        this.#channel.on('close', () => (this.#channel = undefined));
      }
      await this.#channel.deleteQueue(name);
    }
  }

  async close() {
    const connection = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    await connection?.close().catch(() => undefined);
  }
}

/** The installed version of package `name` as this directory resolves it (for section titles). */
export function packageVersion(name) {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(name));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (pkg.name === name) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    const parent = dirname(dir);
    if (parent === dir) return '?';
    dir = parent;
  }
}
