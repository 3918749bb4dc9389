// The invalidation cache (@ferry/invalidation) against a plain Map, ioredis and BentoCache 1.6, on the
// real Redis and brokers.
//
// (a) L1 hit: one key, read many times in a row (1,000,000 for Map and Ferry, 200,000 for BentoCache's
//     slower reads), each read awaited (`await cache.get(key)`), ns/op = the loop's time / reads.
//     Subjects, one after another in each repetition: Map.get not awaited, Map.get awaited (the
//     baseline: the floor of any awaited API), Ferry's cache (memory:// broker, real Redis), BentoCache
//     memory-only (values as objects, and its default JSON), BentoCache memory + Redis L2 + Redis bus.
//     A small object value (~60 bytes of JSON). Median of the repetitions. BentoCache ÷ Ferry is in the
//     notes (the goal: Ferry ≥ 10× faster).
// (b) L2 hit: sequential reads that miss L1 and hit Redis. Ferry: a cache with `l1.maxEntries: 1`
//     reading two keys in turn, so each read finds the other key in L1 (an honest miss through the public
//     API) and takes the full L2 path: one EVALSHA that reads value and version, decode, fill L1. Baseline:
//     ioredis GET + JSON.parse of the same 1 KiB JSON. p50/p99 µs, the two interleaved per repetition.
// (c) Invalidation propagation, per transport: two cache instances, each with its own broker connection
//     and Redis client. Per round the reader holds the key in L1, the writer's `set()` resolves, and the
//     reader calls `get()` (yielding with setImmediate between calls) until it returns the new value; a
//     sample is from set() resolved to that get(). Rounds start only when both instances received every
//     invalidation so far. The same rounds with two BentoCache tiered instances (Redis bus) for comparison.
//
// Every ioredis client sets noDelay (ioredis's default, set explicitly); keys live under a namespace or
// prefix unique per run and are deleted at the end.
import { Redis } from 'ioredis';
import { connect, deleteMemoryHub } from '@ferry/core';
import { createCache } from '@ferry/invalidation';
import { kibPayload, latencySummary, nowNs, repeat, uniqueName } from '../lib/stats.mjs';

export const name = 'cache';

const SECTION = 'cache';
const TRANSPORTS = ['memory', 'amqp', 'mqtt', 'stomp'];

export function steps() {
  return 2 + TRANSPORTS.length + 1;
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Resolves once `predicate()` holds, checking every turn of the event loop; throws after `ms`. */
async function until(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${ms} ms waiting for ${what}`);
    await nextTurn();
  }
}

function redisClient(url) {
  return new Redis(url, { noDelay: true, maxRetriesPerRequest: 1 });
}

/** QUIT when connected, else a plain disconnect (BentoCache's disconnect() closes the client it was given). */
async function closeRedis(client) {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}

/** Deletes every key matching `pattern` (SCAN + UNLINK). */
async function deleteKeys(redis, pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

// ---- (a) L1 hits: one loop per subject, so each call site stays monomorphic ----

function mapLoop(map, key, iterations) {
  let hits = 0;
  const start = nowNs();
  for (let i = 0; i < iterations; i++) if (map.get(key) !== undefined) hits++;
  const ns = (nowNs() - start) / iterations;
  if (hits !== iterations) throw new Error('bench: Map.get missed');
  return ns;
}

async function awaitedMapLoop(map, key, iterations) {
  let hits = 0;
  const start = nowNs();
  for (let i = 0; i < iterations; i++) if ((await map.get(key)) !== undefined) hits++;
  const ns = (nowNs() - start) / iterations;
  if (hits !== iterations) throw new Error('bench: Map.get missed');
  return ns;
}

async function ferryLoop(cache, key, iterations) {
  let hits = 0;
  const start = nowNs();
  for (let i = 0; i < iterations; i++) if ((await cache.get(key)) !== undefined) hits++;
  const ns = (nowNs() - start) / iterations;
  if (hits !== iterations) throw new Error('bench: Ferry cache missed');
  return ns;
}

async function bentoLoop(bento, key, iterations) {
  let hits = 0;
  const options = { key };
  const start = nowNs();
  for (let i = 0; i < iterations; i++) if ((await bento.get(options)) !== undefined) hits++;
  const ns = (nowNs() - start) / iterations;
  if (hits !== iterations) throw new Error('bench: BentoCache missed');
  return ns;
}

const L1_SUBJECTS = [
  ['map', 'Map.get, not awaited'],
  ['mapAwait', 'Map.get, awaited'],
  ['ferry', 'ferry'],
  ['bentoObjects', 'bentocache, memory, serialize: false'],
  ['bentoMemory', 'bentocache, memory'],
  ['bentoTiered', 'bentocache, memory + Redis L2 + bus'],
];

/** The value of the L1 scenario: small, so that BentoCache's default L1 (which parses JSON per hit) is not penalised for size. */
const SMALL_VALUE = { id: 'u-1', name: 'Ada Lovelace', team: 7, active: true };

async function l1Hits(ctx, { bento, redisUrl, run }) {
  ctx.step('cache: L1 hits');
  // Cheap reads loop longer, so that each timed loop lasts ~0.1 s or more and GC pauses average out.
  const fast = ctx.scale(1_000_000, 100_000);
  const slow = ctx.scale(200_000, 20_000);
  const value = SMALL_VALUE;
  const key = 'k1';
  const map = new Map([[key, value]]);
  const broker = await connect(`memory://${run.hub}`, { source: 'bench' });
  const redis = redisClient(redisUrl);
  const bentoRedis = redisClient(redisUrl);
  const objects = bento.bentoMemory({ serialize: false });
  const memory = bento.bentoMemory({ serialize: true });
  const tiered = bento.bentoTiered({
    redis: bentoRedis,
    busOptions: bento.redisOptions(redisUrl),
    prefix: `${run.prefix}-l1`,
  });
  let cache;
  try {
    cache = await createCache({ broker, redis, namespace: `${run.namespace}-l1` });
    await cache.set(key, value);
    await objects.set({ key, value });
    await memory.set({ key, value });
    await tiered.set({ key, value });
    const result = await repeat({
      reps: ctx.reps,
      warmup: ctx.warmup,
      once: async () => ({
        map: mapLoop(map, key, fast),
        mapAwait: await awaitedMapLoop(map, key, fast),
        ferry: await ferryLoop(cache, key, fast),
        bentoObjects: await bentoLoop(objects, key, slow),
        bentoMemory: await bentoLoop(memory, key, slow),
        bentoTiered: await bentoLoop(tiered, key, slow),
      }),
    });
    const stats = cache.stats();
    if (stats.l1.misses !== 0) throw new Error(`bench: Ferry's L1 missed ${stats.l1.misses} times`);
    const ferry = result.metrics.ferry;
    for (const [id, subject] of L1_SUBJECTS) {
      const ratio = result.metrics[id] / ferry;
      ctx.record({
        section: SECTION,
        scenario: 'L1 hit, sequential',
        subject,
        baseline: id === 'mapAwait',
        metrics: { 'ns/op': result.metrics[id] },
        runs: result.runs.map((r) => ({ 'ns/op': r[id] })),
        note: id.startsWith('bento')
          ? `${ratio.toFixed(1)}× Ferry's time per hit (${slow.toLocaleString('en-US')} reads per timed loop).`
          : id === 'ferry'
            ? `${fast.toLocaleString('en-US')} reads per timed loop (Map rows too).`
            : undefined,
      });
    }
    ctx.log(`cache: L1 hit ns/op ${L1_SUBJECTS.map(([id]) => `${id} ${result.metrics[id].toFixed(0)}`).join(', ')}`);
  } finally {
    await cache?.close();
    await broker.close();
    await tiered.disconnect();
    await memory.disconnect();
    await objects.disconnect();
    await deleteKeys(redis, `${run.prefix}-l1:*`);
    await deleteKeys(redis, `ferry:cache:${run.namespace}-l1:*`);
    await redis.quit();
    await closeRedis(bentoRedis);
    deleteMemoryHub(run.hub);
  }
}

// ---- (b) L2 hits ----

async function l2Hits(ctx, { redisUrl, run }) {
  ctx.step('cache: L2 hits');
  const samples = ctx.scale(5_000, 500);
  const value = kibPayload();
  const keys = ['k1', 'k2'];
  const broker = await connect(`memory://${run.hub}`, { source: 'bench' });
  const redis = redisClient(redisUrl);
  const raw = redisClient(redisUrl);
  const rawKeys = keys.map((k) => `${run.prefix}-l2:${k}`);
  let cache;
  try {
    cache = await createCache({ broker, redis, namespace: `${run.namespace}-l2`, l1: { maxEntries: 1 } });
    for (const k of keys) await cache.set(k, value);
    for (const k of rawKeys) await raw.set(k, JSON.stringify(value));
    const before = cache.stats().l2.hits;
    const result = await repeat({
      reps: ctx.reps,
      warmup: ctx.warmup,
      once: async () => {
        const rawNs = [];
        const ferryNs = [];
        for (let i = 0; i < samples; i++) {
          const k = rawKeys[i & 1];
          const start = nowNs();
          const got = JSON.parse(await raw.get(k));
          rawNs.push(nowNs() - start);
          if (got.pad.length !== value.pad.length) throw new Error('bench: ioredis GET returned something else');
        }
        for (let i = 0; i < samples; i++) {
          const k = keys[i & 1];
          const start = nowNs();
          const got = await cache.get(k);
          ferryNs.push(nowNs() - start);
          if (got?.pad.length !== value.pad.length) throw new Error('bench: Ferry L2 read returned something else');
        }
        const r = latencySummary(rawNs);
        const f = latencySummary(ferryNs);
        return Object.fromEntries([
          ...Object.entries(r).map(([m, v]) => [`raw ${m}`, v]),
          ...Object.entries(f).map(([m, v]) => [`ferry ${m}`, v]),
        ]);
      },
    });
    const reads = (ctx.reps + ctx.warmup) * samples;
    const l2 = cache.stats().l2.hits - before;
    if (l2 !== reads) throw new Error(`bench: ${l2} of ${reads} Ferry reads were L2 hits`);
    const scenario = `L2 hit (L1 missed), 1 KiB JSON, ${samples.toLocaleString('en-US')} sequential`;
    for (const [prefix, subject, baseline, note] of [
      ['raw', 'ioredis GET + JSON.parse', true, undefined],
      [
        'ferry',
        'ferry',
        false,
        'l1.maxEntries 1 and two keys read in turn: every read misses L1 and reads Redis (value and version in one EVALSHA), decodes and fills L1.',
      ],
    ]) {
      const metrics = {};
      for (const m of ['p50 µs', 'p99 µs', 'p999 µs']) metrics[m] = result.metrics[`${prefix} ${m}`];
      ctx.record({ section: SECTION, scenario, subject, baseline, metrics, note });
    }
  } finally {
    await cache?.close();
    await broker.close();
    await deleteKeys(raw, `${run.prefix}-l2:*`);
    await deleteKeys(raw, `ferry:cache:${run.namespace}-l2:*`);
    await redis.quit();
    await raw.quit();
    deleteMemoryHub(run.hub);
  }
}

// ---- (c) Invalidation propagation ----

/** Rounds of: the reader holds `key` in L1, the writer sets a new value, the reader gets until it sees it. */
async function propagationRounds({ writer, reader, rounds, quiet, what }) {
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    await quiet();
    const n = `${round}-${nowNs()}`;
    await reader.get();
    await writer.set(n);
    const acked = nowNs();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const value = await reader.get();
      if (value?.n === n) break;
      if (Date.now() > deadline) throw new Error(`bench: ${what} still served the old value 10 s after set()`);
      await nextTurn();
    }
    samples.push(nowNs() - acked);
  }
  return latencySummary(samples);
}

function urlOf(ctx, transport, hub) {
  return transport === 'memory' ? `memory://${hub}` : ctx.urls[transport];
}

async function ferryPropagation(ctx, transport, { redisUrl, run }) {
  ctx.step(`cache: propagation over ${transport}`);
  const rounds = ctx.scale(300, 50);
  const namespace = `${run.namespace}-${transport}`;
  const url = urlOf(ctx, transport, run.hub);
  const instances = [];
  const admin = redisClient(redisUrl);
  const key = 'k';
  try {
    for (const id of ['writer', 'reader']) {
      const broker = await connect(url, { source: `bench-cache-${id}` });
      const redis = redisClient(redisUrl);
      const instance = { broker, redis };
      instances.push(instance);
      instance.cache = await createCache({ broker, redis, namespace });
    }
    const [writer, reader] = instances.map((i) => i.cache);
    let sent = 0;
    const quiet = () =>
      until(
        () => writer.stats().invalidations.received === sent && reader.stats().invalidations.received === sent,
        10_000,
        `every instance to receive ${sent} invalidations over ${transport}`,
      );
    const result = await repeat({
      reps: ctx.reps,
      warmup: ctx.warmup,
      once: () =>
        propagationRounds({
          writer: {
            set: async (n) => {
              await writer.set(key, { n });
              sent++;
            },
          },
          reader: { get: () => reader.get(key) },
          rounds,
          quiet,
          what: `Ferry over ${transport}`,
        }),
    });
    const stats = reader.stats();
    if (stats.flushes.gap + stats.flushes.disconnect > 0) {
      throw new Error(`bench: the reader flushed its L1 (${JSON.stringify(stats.flushes)})`);
    }
    ctx.record({
      section: SECTION,
      scenario: `invalidation propagation, ${transport}`,
      subject: 'ferry',
      metrics: result.metrics,
      runs: result.runs,
      note:
        transport === 'memory'
          ? `set() resolved → the other instance's get() returns the new value; ${rounds} rounds per repetition.`
          : undefined,
    });
  } finally {
    for (const i of instances) await i.cache?.close();
    for (const i of instances) await i.broker.close();
    for (const i of instances) await i.redis.quit();
    await deleteKeys(admin, `ferry:cache:${namespace}:*`);
    await admin.quit();
    if (transport === 'memory') deleteMemoryHub(run.hub);
  }
}

async function bentoPropagation(ctx, { bento, redisUrl, run }) {
  ctx.step('cache: propagation, BentoCache Redis bus');
  const rounds = ctx.scale(300, 50);
  const prefix = `${run.prefix}-bus`;
  const clients = [redisClient(redisUrl), redisClient(redisUrl)];
  const caches = clients.map((redis) => bento.bentoTiered({ redis, busOptions: bento.redisOptions(redisUrl), prefix }));
  const key = 'k';
  try {
    const [writer, reader] = caches;
    const result = await repeat({
      reps: ctx.reps,
      warmup: ctx.warmup,
      once: () =>
        propagationRounds({
          writer: { set: (n) => writer.set({ key, value: { n } }) },
          reader: { get: () => reader.get({ key }) },
          rounds,
          quiet: async () => undefined,
          what: 'BentoCache',
        }),
    });
    ctx.record({
      section: SECTION,
      scenario: 'invalidation propagation, BentoCache Redis bus',
      subject: 'bentocache, memory + Redis L2 + bus',
      metrics: result.metrics,
      runs: result.runs,
      note: 'the same rounds with two BentoCache instances (memory L1, Redis L2, Redis pub/sub bus).',
    });
  } finally {
    const admin = redisClient(redisUrl);
    await deleteKeys(admin, `${prefix}:*`);
    await admin.quit();
    for (const c of caches) await c.disconnect();
    for (const c of clients) await closeRedis(c);
  }
}

export async function run(ctx) {
  const bento = await import('./cache-bento.mjs');
  const redisUrl = ctx.urls.redis;
  const id = uniqueName('bench-cache');
  const run = { hub: id, namespace: id, prefix: id };
  ctx.section(SECTION, {
    title: 'Invalidation cache: L1 and L2 hits, invalidation propagation',
    description:
      'L1 hit: sequential awaited reads of one key, ns per read. L2 hit: sequential reads that miss L1 and read ' +
      "Redis. Propagation: a writer instance's set() resolved → another instance's get() returns the new value, " +
      'each instance with its own broker connection and Redis client.',
    notes: [
      "Ferry's cache runs on a memory:// broker for the L1 and L2 scenarios (neither touches the broker) and on " +
        'the real Redis. L1 hits read a small object (~60 bytes as JSON). BentoCache 1.6.1: memory driver with ' +
        "serialize: false (values kept as objects, like Ferry's L1) and with its default (JSON, parsed per hit); " +
        'the tiered store (memory L1 with the default, Redis L2, Redis bus) cannot use serialize: false in 1.6.1 ' +
        '(reading back an L1 entry filled from Redis throws).',
      "Propagation includes the reader's L2 read: after the invalidation evicted its L1 entry, its next get() " +
        'reads Redis. Rounds begin when both instances received every earlier invalidation.',
    ],
  });
  const shared = { bento, redisUrl, run };
  await l1Hits(ctx, shared);
  await l2Hits(ctx, shared);
  for (const transport of TRANSPORTS) await ferryPropagation(ctx, transport, shared);
  await bentoPropagation(ctx, shared);
}
