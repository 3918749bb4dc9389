/**
 * The cache's consistency over every transport, against the real Redis and the real brokers: several
 * instances (each with its own broker connection and its own Redis client) on one namespace.
 *
 * - a write on one instance is never served as the old value by another once the write resolved and the
 *   invalidation arrived; the propagation delay (set() resolved → get() returns the new value) per transport;
 * - a randomized run of concurrent writes and reads on a few hot keys: no read older than a write
 *   acknowledged more than {@link STALE_BOUND_MS} before it, and every instance ends on the latest value;
 * - one instance's broker link cut (a FaultProxy, or the memory hub's fault hooks) while the others keep
 *   writing: while it reports `disconnected` every read is the newest acknowledged value (L1 bypassed), and
 *   after `connected` it converges and serves L1 again.
 *
 * Timing is measured with `performance.now()` in this one process, so "acknowledged before" is exact.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, connect, deleteMemoryHub, memoryHub } from '@ferry/core';
import { deferred, FaultProxy, observeFor, uniqueName, waitFor } from '@ferry/conformance';
import '@ferry/amqp';
import '@ferry/mqtt';
import '@ferry/stomp';
import { type Cache, createCache } from '../src/index.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 1_000 } as const;
/** A read older than a write acknowledged more than this long before the read began is stale. */
const STALE_BOUND_MS = 200;
/** Length of the randomized run. */
const RANDOM_RUN_MS = 2_500;
const HOT_KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'] as const;
/** Bound of each cleanup step (closing the caches, the brokers, the Redis clients, the proxies). */
const CLEANUP_STEP_MS = 5_000;

const HUB = uniqueName('invalidation');

interface TransportCase {
  readonly name: 'memory' | 'amqp' | 'mqtt' | 'stomp';
  /** The real broker (absent for memory: its cuts use the hub's fault hooks). */
  readonly target?: { readonly host: string; readonly port: number };
  /** The URL for `address` (`host:port`, the broker's or a fault proxy's). */
  readonly url: (address: string) => string;
}

const TRANSPORTS: readonly TransportCase[] = [
  { name: 'memory', url: () => `memory://${HUB}` },
  {
    name: 'amqp',
    target: { host: '127.0.0.1', port: 5672 },
    url: (address) => `amqp://guest:guest@${address}`,
  },
  {
    name: 'mqtt',
    target: { host: '127.0.0.1', port: 1883 },
    url: (address) => `mqtt://${address}?protocolVersion=5`,
  },
  {
    name: 'stomp',
    target: { host: '127.0.0.1', port: 61613 },
    url: (address) => `stomp://guest:guest@${address}`,
  },
];

/** What the tests store: `n` is the write's number, unique per key and increasing in call order. */
interface Value {
  readonly key: string;
  readonly n: number;
  readonly by: string;
}

/** One cache instance: its own broker connection and Redis client. */
interface Instance {
  readonly name: string;
  readonly broker: Broker;
  readonly redis: Redis;
  readonly cache: Cache<Value>;
  /** Cuts this instance's broker link and keeps it out (only for `cuttable` instances). */
  readonly cut: () => Promise<void>;
  /** Lets it back. */
  readonly restore: () => void;
}

/** One write: when set() was called and when it resolved (undefined while pending or when it failed). */
interface WriteRecord {
  readonly n: number;
  readonly start: number;
  ack: number | undefined;
}

/** One read: when get() was called, what it returned (`n`), and what phase the run was in then. */
interface ReadRecord {
  readonly instance: string;
  readonly key: string;
  readonly start: number;
  readonly n: number | undefined;
  readonly phase: string;
}

/** A deterministic PRNG (mulberry32), seeded per test and printed, so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const ms = (value: number): string => value.toFixed(2);

/** Pacing for the random workload (not a wait for a condition). */
const pace = (delayMs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, delayMs));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The writes of a run, per key, and the staleness of reads against them. A read that returned write `c`
 * is behind when some write `w` on the key started after `c` was acknowledged (so Redis ordered `w` after
 * `c`, whatever ran concurrently) and was acknowledged before the read began; its age is how long before
 * the read the earliest such `w` was acknowledged.
 */
class History {
  readonly #writes = new Map<string, Map<number, WriteRecord>>();
  readonly #counters = new Map<string, number>();
  failures = 0;

  /** Starts a write of `key`: its number and record. */
  begin(key: string): WriteRecord {
    const n = (this.#counters.get(key) ?? 0) + 1;
    this.#counters.set(key, n);
    const record: WriteRecord = { n, start: performance.now(), ack: undefined };
    let writes = this.#writes.get(key);
    if (writes === undefined) this.#writes.set(key, (writes = new Map<number, WriteRecord>()));
    writes.set(n, record);
    return record;
  }

  /** Writes `key` through `cache`, recording when it was acknowledged. */
  async write(cache: Cache<Value>, key: string, by: string): Promise<WriteRecord> {
    const record = this.begin(key);
    try {
      await cache.set(key, { key, n: record.n, by });
      record.ack = performance.now();
    } catch (error) {
      this.failures++;
      throw error;
    }
    return record;
  }

  get writes(): number {
    let count = 0;
    for (const writes of this.#writes.values()) count += writes.size;
    return count;
  }

  /** How long before `read.start` a write newer than the returned one was acknowledged (0: not behind). */
  ageOf(read: ReadRecord): number {
    const writes = this.#writes.get(read.key);
    if (writes === undefined || read.n === undefined) return Number.POSITIVE_INFINITY;
    const returned = writes.get(read.n);
    if (returned === undefined) return Number.POSITIVE_INFINITY; // a value no one wrote
    if (returned.ack === undefined) return 0; // never acknowledged: nothing is provably newer
    let earliest = Number.POSITIVE_INFINITY;
    for (const w of writes.values()) {
      if (w.start > returned.ack && w.ack !== undefined && w.ack < read.start && w.ack < earliest) earliest = w.ack;
    }
    return earliest === Number.POSITIVE_INFINITY ? 0 : read.start - earliest;
  }

  /** Whether write `n` of `key` is a possible final value: no write started after it was acknowledged. */
  isMaximal(key: string, n: number): boolean {
    const writes = this.#writes.get(key);
    const candidate = writes?.get(n);
    if (writes === undefined || candidate === undefined) return false;
    const ack = candidate.ack ?? Number.POSITIVE_INFINITY;
    for (const w of writes.values()) if (w.start > ack) return false;
    return true;
  }
}

/** Staleness of a set of reads: how many were behind at all, how many by more than `bound`, the oldest. */
function staleness(
  history: History,
  reads: readonly ReadRecord[],
  bound: number,
): { behind: number; stale: number; maxAge: number; examples: string[] } {
  let behind = 0;
  let stale = 0;
  let maxAge = 0;
  const examples: string[] = [];
  for (const read of reads) {
    const age = history.ageOf(read);
    if (age > 0) behind++;
    if (age > maxAge) maxAge = age;
    if (age > bound) {
      stale++;
      if (examples.length < 5) {
        examples.push(`${read.instance} get(${read.key}) → n=${String(read.n)} ${ms(age)} ms old (${read.phase})`);
      }
    }
  }
  return { behind, stale, maxAge, examples };
}

describe.each(TRANSPORTS)('invalidation over $name', (transport) => {
  let admin: Redis;
  let namespace = '';
  const proxies: FaultProxy[] = [];
  const instances: Instance[] = [];

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    await admin.quit();
    if (transport.name === 'memory') deleteMemoryHub(HUB);
  });

  afterEach(async () => {
    for (const instance of instances) instance.restore();
    const all = instances.splice(0);
    const cuts = proxies.splice(0);
    const ns = namespace;
    namespace = '';
    // Every step is bounded, so a close that hangs fails here with its name rather than as a hook timeout.
    const failures: string[] = [];
    const step = async (what: string, work: () => Promise<unknown>): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${CLEANUP_STEP_MS} ms`)), CLEANUP_STEP_MS);
      });
      try {
        await Promise.race([work(), timeout]);
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    };
    await Promise.all(all.map((i) => step(`cache ${i.name} close()`, () => i.cache.close())));
    await Promise.all(all.map((i) => step(`broker ${i.name} close()`, () => i.broker.close())));
    await Promise.all(all.map((i) => step(`redis ${i.name} quit()`, () => i.redis.quit())));
    // The brokers closed gracefully: let their proxied connections finish closing before the proxy resets
    // what is left. (A FaultProxy reset of a socket whose FIN it is still forwarding never completes: Node's
    // resetAndDestroy() after end() fails with EINVAL and never emits 'close', so close() would hang.)
    await Promise.all(
      cuts.map((proxy) =>
        waitFor(() => proxy.stats().open === 0, CLEANUP_STEP_MS, 'the proxied connections to close').catch(
          () => undefined,
        ),
      ),
    );
    await Promise.all(
      cuts.map((proxy) => step(`FaultProxy close() (stats ${JSON.stringify(proxy.stats())})`, () => proxy.close())),
    );
    if (ns !== '') await step(`delete ferry:cache:${ns}:*`, () => deleteNamespace(ns));
    expect(failures, 'cleanup').toEqual([]);
  }, 30_000);

  async function deleteNamespace(ns: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `ferry:cache:${ns}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
  }

  function newNamespace(): string {
    namespace = uniqueName(`inv-${transport.name}`);
    return namespace;
  }

  /** A cache instance on its own connection; `cuttable` puts it behind a fault proxy (or a named memory connection). */
  async function instance(name: string, ns: string, cuttable = false): Promise<Instance> {
    let broker: Broker;
    let cut: () => Promise<void> = () => Promise.reject(new Error(`${name} is not cuttable`));
    let restore = (): void => undefined;
    if (transport.target === undefined) {
      const connectionName = uniqueName(name);
      broker = await connect(transport.url(''), { reconnect: RECONNECT, connectionName });
      if (cuttable) {
        cut = () => Promise.resolve(memoryHub(HUB).stop(connectionName));
        restore = () => memoryHub(HUB).start(connectionName);
      }
    } else if (cuttable) {
      const proxy = await FaultProxy.start({ target: transport.target });
      proxies.push(proxy);
      broker = await connect(transport.url(proxy.address), { reconnect: RECONNECT });
      cut = () => proxy.refuse();
      restore = () => proxy.accept();
    } else {
      broker = await connect(transport.url(`${transport.target.host}:${transport.target.port}`), {
        reconnect: RECONNECT,
      });
    }
    const redis = new Redis(REDIS_URL);
    let cache: Cache<Value>;
    try {
      cache = await createCache<Value>({ broker, redis, namespace: ns });
    } catch (error) {
      await broker.close();
      await redis.quit();
      throw error;
    }
    const created: Instance = { name, broker, redis, cache, cut, restore };
    instances.push(created);
    return created;
  }

  /** Writes every hot key once (through `writer`) and waits until every instance received those invalidations. */
  async function seed(history: History, writer: Instance, all: readonly Instance[]): Promise<void> {
    const before = all.map((i) => i.cache.stats().invalidations.received);
    for (const key of HOT_KEYS) await history.write(writer.cache, key, writer.name);
    await waitFor(
      () => all.every((i, x) => i.cache.stats().invalidations.received >= before[x]! + HOT_KEYS.length),
      10_000,
      'every instance to receive the seed invalidations',
    );
  }

  it('a write on one instance is never served as the old value by another once its invalidation arrived; propagation delay', async () => {
    const ns = newNamespace();
    const all = [await instance('a', ns), await instance('b', ns), await instance('c', ns)];
    const history = new History();
    await seed(history, all[0]!, all);
    for (const i of all) for (const key of HOT_KEYS) await i.cache.get(key);
    const base = all.map((i) => i.cache.stats());

    const rounds = 60;
    const delays: number[] = [];
    const violations: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const writer = all[round % all.length]!;
      const others = all.filter((i) => i !== writer);
      const key = HOT_KEYS[round % HOT_KEYS.length]!;
      // Quiet: every instance received every invalidation sent so far (its own too), so the next one it
      // receives is this round's.
      const sent = HOT_KEYS.length + round;
      await waitFor(
        () => all.every((i) => i.cache.stats().invalidations.received === sent),
        10_000,
        () =>
          `every instance to receive ${sent} invalidations: ${all.map((i) => i.cache.stats().invalidations.received).join('/')}`,
      );
      // Every other instance holds the current value in L1 (a hit, or a fill from Redis).
      for (const other of others) await other.cache.get(key);
      const received = others.map((o) => o.cache.stats().invalidations.received);
      const record = await history.write(writer.cache, key, writer.name);
      const acked = record.ack!;
      await Promise.all(
        others.map(async (other, x) => {
          const deadline = acked + 10_000;
          for (;;) {
            const arrived = other.cache.stats().invalidations.received > received[x]!;
            const value = await other.cache.get(key);
            if (value?.n === record.n) {
              delays.push(performance.now() - acked);
              return;
            }
            if (arrived) {
              violations.push(
                `round ${round}: ${other.name} get(${key}) → n=${String(value?.n)} after the invalidation of n=${record.n} arrived`,
              );
            }
            if (performance.now() > deadline) {
              throw new Error(
                `${other.name} still serves n=${String(value?.n)} of ${key} 10 s after n=${record.n} was written`,
              );
            }
            await nextTurn();
          }
        }),
      );
    }

    await waitFor(
      () => all.every((i) => i.cache.stats().invalidations.received === HOT_KEYS.length + rounds),
      10_000,
      'every instance to receive every invalidation',
    );
    const stats = all.map((i) => i.cache.stats());
    const reported = stats.map(
      (s, x) =>
        `${all[x]!.name}: p50=${ms(s.propagationMs.p50)} p99=${ms(s.propagationMs.p99)} max=${ms(s.propagationMs.max)} (n=${s.propagationMs.count})`,
    );
    console.info(
      `[invalidation ${transport.name}] propagation set() resolved → other instance's get() returns the new value: ` +
        `p50=${ms(percentile(delays, 0.5))} ms p99=${ms(percentile(delays, 0.99))} ms max=${ms(Math.max(...delays))} ms ` +
        `(n=${delays.length}); stats().propagationMs publish → receipt: ${reported.join('; ')}`,
    );

    expect(violations).toEqual([]);
    expect(delays).toHaveLength(rounds * (all.length - 1));
    for (const [x, s] of stats.entries()) {
      const observed = rounds - Math.ceil((rounds - x) / all.length); // rounds where instance x did not write
      // Each received invalidation of a round evicted exactly the old L1 entry of an instance that did not write.
      expect(s.invalidations.evicted - base[x]!.invalidations.evicted, `${all[x]!.name} evictions`).toBe(observed);
      expect(s.invalidations.received - base[x]!.invalidations.received, `${all[x]!.name} received`).toBe(rounds);
      expect(s.invalidations.pending).toBe(0);
      expect(s.flushes, `${all[x]!.name} flushes`).toMatchObject({ disconnect: 0, gap: 0, clear: 0 });
      expect(s.bypassing).toBe(false);
      expect(s.propagationMs.count).toBeGreaterThanOrEqual(rounds + HOT_KEYS.length);
    }
  }, 40_000);

  it('randomized concurrent writes and reads on hot keys: no stale read beyond the bound, every instance ends on the latest value', async () => {
    const seed0 = Math.floor(Math.random() * 2 ** 31);
    const rand = random(seed0);
    const pick = (): string => HOT_KEYS[Math.floor(rand() * HOT_KEYS.length)]!;
    const ns = newNamespace();
    const all = [await instance('a', ns), await instance('b', ns), await instance('c', ns)];
    const history = new History();
    await seed(history, all[0]!, all);

    const reads: ReadRecord[] = [];
    const end = performance.now() + RANDOM_RUN_MS;
    const writer = async (i: Instance): Promise<void> => {
      while (performance.now() < end) {
        await history.write(i.cache, pick(), i.name);
        await pace(rand() * 8);
      }
    };
    const reader = async (i: Instance): Promise<void> => {
      while (performance.now() < end) {
        const key = pick();
        const start = performance.now();
        const value = await i.cache.get(key);
        reads.push({ instance: i.name, key, start, n: value?.n, phase: 'run' });
        await pace(rand() * 2);
      }
    };
    await Promise.all(all.flatMap((i) => [writer(i), writer(i), reader(i), reader(i), reader(i)]));

    // Settled: a fresh instance reads Redis (its L1 is empty); every instance must converge on that.
    const auditor = await instance('auditor', ns);
    const latest = new Map<string, number>();
    for (const key of HOT_KEYS) {
      const value = await auditor.cache.get(key);
      expect(value, `Redis value of ${key}`).toBeDefined();
      expect(history.isMaximal(key, value!.n), `${key}=n${value!.n} is a latest write`).toBe(true);
      latest.set(key, value!.n);
    }
    const lagging = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const i of all) {
        for (const key of HOT_KEYS) {
          const n = (await i.cache.get(key))?.n;
          if (n !== latest.get(key)) out.push(`${i.name} ${key}: n=${String(n)} (latest ${latest.get(key)})`);
        }
      }
      return out;
    };
    let last: string[] = [];
    await waitFor(
      async () => (last = await lagging()).length === 0,
      5_000,
      () => `every instance to serve the latest value: ${last.join(', ')}`,
    );

    const result = staleness(history, reads, STALE_BOUND_MS);
    const stats = all.map((i) => i.cache.stats());
    const hits = stats.reduce((sum, s) => sum + s.l1.hits, 0);
    const p99s = stats.map((s) => ms(s.propagationMs.p99)).join('/');
    console.info(
      `[invalidation ${transport.name}] random run (seed ${seed0}, ${RANDOM_RUN_MS} ms, 3 instances, ${HOT_KEYS.length} keys): ` +
        `writes=${history.writes} reads=${reads.length} (L1 hits ${hits}) stale(>${STALE_BOUND_MS} ms)=${result.stale} ` +
        `behind-newest-ack(any age)=${result.behind} max-age=${ms(result.maxAge)} ms; stats().propagationMs p99 ${p99s} ms; ` +
        `flushes ${JSON.stringify(stats.map((s) => s.flushes))}`,
    );

    expect(history.failures).toBe(0);
    expect(reads.length).toBeGreaterThan(1_000);
    expect(result.examples).toEqual([]);
    expect(result.stale).toBe(0);
    expect(hits, 'the run served from L1').toBeGreaterThan(0);
    for (const s of stats) expect(s.invalidations.pending).toBe(0);
  }, 40_000);

  it('an instance whose broker link is cut serves no stale value while disconnected, then converges and serves L1 again', async () => {
    const seed0 = Math.floor(Math.random() * 2 ** 31);
    const rand = random(seed0);
    const pick = (): string => HOT_KEYS[Math.floor(rand() * HOT_KEYS.length)]!;
    const ns = newNamespace();
    const a = await instance('a', ns);
    const b = await instance('b', ns);
    const c = await instance('c', ns, true);
    const all = [a, b, c];
    const history = new History();
    await seed(history, a, all);
    for (const key of HOT_KEYS) await c.cache.get(key);

    let phase: 'before' | 'cutting' | 'disconnected' | 'reconnected' = 'before';
    const at = { cut: 0, disconnected: 0, connected: 0 };
    let l1HitsAtDisconnect = 0;
    let l1HitsAtConnect = 0;
    let receivedAtConnect = 0;
    let bypassingWhileDisconnected: boolean | undefined;
    c.broker.on('disconnected', () => {
      // The cache's own listener ran first (registered at createCache): L1 is bypassed from here on.
      if (phase !== 'cutting') return;
      phase = 'disconnected';
      at.disconnected = performance.now();
      l1HitsAtDisconnect = c.cache.stats().l1.hits;
      bypassingWhileDisconnected = c.cache.stats().bypassing;
    });
    c.broker.on('connected', () => {
      if (phase !== 'disconnected') return;
      phase = 'reconnected';
      at.connected = performance.now();
      l1HitsAtConnect = c.cache.stats().l1.hits;
      receivedAtConnect = c.cache.stats().invalidations.received;
    });

    let writing = true;
    const reads: ReadRecord[] = [];
    let reading = true;
    const writer = async (i: Instance): Promise<void> => {
      while (writing) {
        await history.write(i.cache, pick(), i.name);
        await pace(1 + rand() * 6);
      }
    };
    const reader = async (): Promise<void> => {
      while (reading) {
        const key = pick();
        const readPhase = phase;
        const start = performance.now();
        const value = await c.cache.get(key);
        reads.push({ instance: c.name, key, start, n: value?.n, phase: readPhase });
        await pace(rand() * 2);
      }
    };
    const writers = Promise.all([writer(a), writer(a), writer(b), writer(b)]);
    const readers = Promise.all([reader(), reader(), reader()]);
    try {
      await observeFor(300); // a stretch of normal operation
      phase = 'cutting';
      at.cut = performance.now();
      await c.cut();
      await waitFor(() => phase === 'disconnected', 10_000, `${transport.name}: the cut instance's disconnected event`);
      await observeFor(1_000); // the outage: the others keep writing, the cut instance keeps reading
      expect(c.cache.stats().bypassing).toBe(true);
      c.restore();
      await waitFor(() => phase === 'reconnected', 15_000, `${transport.name}: the cut instance's connected event`);
      await waitFor(
        () => c.cache.stats().invalidations.received > receivedAtConnect,
        5_000,
        'invalidations to reach the cut instance again',
      );
      await observeFor(700); // writes go on after the reconnect
    } finally {
      writing = false;
      await writers;
      reading = false;
      await readers;
    }

    const latest = new Map<string, number>();
    const auditor = await instance('auditor', ns);
    for (const key of HOT_KEYS) latest.set(key, (await auditor.cache.get(key))!.n);
    let last: string[] = [];
    await waitFor(
      async () => {
        last = [];
        for (const i of all) {
          for (const key of HOT_KEYS) {
            const n = (await i.cache.get(key))?.n;
            if (n !== latest.get(key)) last.push(`${i.name} ${key}: n=${String(n)} (latest ${latest.get(key)})`);
          }
        }
        return last.length === 0;
      },
      5_000,
      () => `every instance to converge after the reconnect: ${last.join(', ')}`,
    );
    // Serves L1 again: a second read of an unchanged key is an L1 hit.
    const hitsBefore = c.cache.stats().l1.hits;
    for (const key of HOT_KEYS) expect((await c.cache.get(key))?.n).toBe(latest.get(key));
    const hitsAfter = c.cache.stats().l1.hits;

    const during = reads.filter((r) => r.phase === 'disconnected');
    const outside = reads.filter((r) => r.phase === 'before' || r.phase === 'reconnected');
    const cutting = reads.filter((r) => r.phase === 'cutting');
    const strict = staleness(history, during, 0);
    const bounded = staleness(history, outside, STALE_BOUND_MS);
    const window = staleness(history, cutting, Number.POSITIVE_INFINITY);
    const afterReconnect = reads.filter((r) => r.phase === 'reconnected');
    const reconnected = staleness(history, afterReconnect, Number.POSITIVE_INFINITY);
    const stats = c.cache.stats();
    console.info(
      `[invalidation ${transport.name}] cut (seed ${seed0}): disconnected ${ms(at.disconnected - at.cut)} ms after the cut, ` +
        `connected ${ms(at.connected - at.disconnected)} ms later; writes=${history.writes}; ` +
        `reads while disconnected=${during.length} stale(any age)=${strict.stale}; reads before/after=${outside.length} ` +
        `stale(>${STALE_BOUND_MS} ms)=${bounded.stale}; reads between cut and disconnected event=${cutting.length} ` +
        `behind=${window.behind} max-age=${ms(window.maxAge)} ms; reads after connected=${afterReconnect.length} ` +
        `behind=${reconnected.behind} max-age=${ms(reconnected.maxAge)} ms; L1 hits while disconnected=${l1HitsAtConnect - l1HitsAtDisconnect}, ` +
        `after reconnect=${hitsAfter - l1HitsAtConnect}; flushes ${JSON.stringify(stats.flushes)}`,
    );

    expect(history.failures).toBe(0);
    expect(bypassingWhileDisconnected).toBe(true);
    expect(during.length, 'reads while disconnected').toBeGreaterThan(50);
    expect(strict.examples).toEqual([]);
    expect(strict.stale).toBe(0);
    expect(l1HitsAtConnect - l1HitsAtDisconnect, 'L1 hits while disconnected').toBe(0);
    expect(bounded.examples).toEqual([]);
    expect(bounded.stale).toBe(0);
    expect(afterReconnect.length).toBeGreaterThan(0);
    expect(hitsAfter - hitsBefore, 'L1 serves again after the reconnect').toBe(HOT_KEYS.length);
    expect(stats.bypassing).toBe(false);
    expect(stats.flushes.disconnect).toBeGreaterThanOrEqual(2); // at the drop and at the return
  }, 45_000);

  // Single flight must not hand a caller that arrives after a write was acknowledged and its invalidation
  // received the result of a load that began before the write.
  it('a get() after the invalidation arrived does not join a load that began before the write', async () => {
    const ns = newNamespace();
    const [writer, reader] = [await instance('a', ns), await instance('b', ns)];
    const history = new History();
    const key = 'slow-load';
    const source = deferred<Value>();
    let loaderCalls = 0;
    // A load that starts before the write: Redis misses, the loader (a slow database) is still running.
    const early = reader.cache.get(key, () => {
      loaderCalls++;
      return source.promise;
    });
    await waitFor(() => loaderCalls === 1, 5_000, 'the loader to be called');
    const received = reader.cache.stats().invalidations.received;
    const written = await history.write(writer.cache, key, writer.name);
    await waitFor(() => reader.cache.stats().invalidations.received > received, 5_000, 'the invalidation to arrive');
    // The write resolved and its invalidation arrived: from now on the old value must not be served.
    const late = reader.cache.get(key);
    source.resolve({ key, n: 0, by: 'database, read before the write' });
    await early; // concurrent with the write: either value is fine
    const lateValue = await late;
    const afterwards = await reader.cache.get(key);
    console.info(
      `[invalidation ${transport.name}] single-flight: get() called after the write of n=${written.n} resolved and its ` +
        `invalidation arrived returned n=${String(lateValue?.n)} (${lateValue?.by ?? 'undefined'}); the next get() returned n=${String(afterwards?.n)}`,
    );
    expect(afterwards?.n, 'L1/L2 not polluted by the early load').toBe(written.n);
    expect(lateValue?.n, 'the get() that began after the invalidation arrived').toBe(written.n);
  });
});
