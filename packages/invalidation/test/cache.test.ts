/**
 * `@ferry/invalidation` against the real Redis on 127.0.0.1:6379 (and private redis-server processes for
 * outages) and the in-process `memory://` broker. Each test has its own hub and namespace; the namespace's
 * Redis keys are deleted after it, and every cache, broker and client it opened is closed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { Container, inject, injectable } from 'inversify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Broker,
  type ConnectOptions,
  type ConsumeMiddleware,
  type PublishMiddleware,
  connect,
  deleteMemoryHub,
  ErrorCode,
  idempotency,
  memoryHub,
  queue,
  topic,
} from '@ferry/core';
import { FERRY_BROKER, ferryModule } from '@ferry/core/inversify';
import { type Deferred, deferred, observeFor, rejection, uniqueName, waitFor } from '@ferry/conformance';
import {
  type Cache,
  type CacheOptions,
  createCache,
  INVALIDATION_TYPE,
  RedisIdempotencyStore,
} from '@ferry/invalidation';
import { cacheModule, cacheToken, FERRY_REDIS, redisModule } from '@ferry/invalidation/inversify';

const REDIS_URL = 'redis://127.0.0.1:6379';

/** Options of the clients of a private redis-server. */
interface ClientOptions {
  readonly host: string;
  readonly port: number;
  readonly maxRetriesPerRequest: number;
  readonly retryStrategy: () => number;
}

// ---------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------

/** What each test opened, closed after it, last opened first. */
const closers: Array<() => Promise<unknown>> = [];
const namespaces = new Set<string>();
const hubs = new Set<string>();
let admin: Redis;

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

afterAll(async () => {
  await admin.quit();
});

afterEach(async () => {
  const errors: unknown[] = [];
  for (const close of closers.splice(0).reverse()) {
    try {
      await close();
    } catch (error) {
      errors.push(error);
    }
  }
  for (const ns of namespaces) await deleteKeys(admin, `ferry:cache:${ns}:*`);
  namespaces.clear();
  for (const hub of hubs) deleteMemoryHub(hub);
  hubs.clear();
  if (errors.length > 0) throw new AggregateError(errors, 'closing what the test opened failed');
});

async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

async function deleteKeys(client: Redis, pattern: string): Promise<void> {
  const keys = await scanKeys(client, pattern);
  if (keys.length > 0) await client.del(...keys);
}

/** The L2 entry of `key` as Redis holds it (`<version>|<json>`), decoded; `undefined` when absent. */
async function stored(
  ns: string,
  key: string,
  client: Redis = admin,
): Promise<{ version: number; value: unknown } | undefined> {
  const raw = await client.getBuffer(`ferry:cache:${ns}:v:${key}`);
  if (raw === null) return undefined;
  const bar = raw.indexOf('|');
  return {
    version: Number(raw.subarray(0, bar).toString()),
    value: JSON.parse(raw.subarray(bar + 1).toString()) as unknown,
  };
}

/** A key's version counter in Redis (`n:<key>`), 0 when absent. */
async function versionOf(ns: string, key: string, client: Redis = admin): Promise<number> {
  return Number((await client.get(`ferry:cache:${ns}:n:${key}`)) ?? '0');
}

interface Instance<T> {
  readonly cache: Cache<T>;
  readonly broker: Broker;
  readonly redis: Redis;
  /** The broker's `connectionName`: `memoryHub(hub).stop(name)` cuts this instance only. */
  readonly connectionName: string;
}

interface InstanceOptions {
  readonly connect?: ConnectOptions;
  readonly cache?: Omit<Partial<CacheOptions>, 'broker' | 'redis' | 'namespace'>;
  readonly redis?: Redis;
}

/** One test's hub and namespace; instances are caches with their own broker and Redis client. */
class World {
  readonly hub = uniqueName('hub');
  readonly ns = uniqueName('ns');
  readonly url = `memory://${this.hub}`;
  readonly topicName = `ferry.cache.${this.ns}`;

  constructor() {
    hubs.add(this.hub);
    namespaces.add(this.ns);
  }

  async broker(options: ConnectOptions = {}): Promise<Broker> {
    const broker = await connect(this.url, options);
    closers.push(() => broker.close());
    return broker;
  }

  redis(options?: ClientOptions): Redis {
    const client = options === undefined ? new Redis(REDIS_URL) : new Redis({ ...options });
    client.on('error', () => undefined); // outage tests provoke connection errors on purpose
    closers.push(() => (client.status === 'ready' ? client.quit() : Promise.resolve(client.disconnect())));
    return client;
  }

  async instance<T = string>(options: InstanceOptions = {}): Promise<Instance<T>> {
    const connectionName = uniqueName('cache');
    const broker = await this.broker({ connectionName, ...options.connect });
    const redis = options.redis ?? this.redis();
    const cache = await createCache<T>({ broker, redis, namespace: this.ns, ...options.cache });
    closers.push(() => cache.close());
    return { cache, broker, redis, connectionName };
  }

  /** Everything published on the namespace's invalidation topic, as received by a plain subscriber. */
  async observe(): Promise<unknown[]> {
    const events: unknown[] = [];
    await (await this.broker()).consumer().subscribe(topic(this.topicName), (m) => void events.push(m.data));
    return events;
  }

  /** A publisher of hand-made invalidation events on the namespace's topic (a fake cache instance). */
  async sender(): Promise<(data: object) => Promise<void>> {
    const producer = (await this.broker()).producer();
    return (data) => producer.publish(topic(this.topicName), { type: INVALIDATION_TYPE, data });
  }
}

const received = (cache: Cache<unknown>): number => cache.stats().invalidations.received;

async function receivedMore(caches: ReadonlyArray<Cache<unknown>>, before: readonly number[]): Promise<void> {
  await waitFor(
    () => caches.every((cache, i) => received(cache) > before[i]!),
    5_000,
    () => `every instance to receive the invalidation (received ${caches.map(received).join(', ')})`,
  );
}

/** Runs `action`, then waits until each of `caches` has received at least one more invalidation. */
async function andDelivered<R>(caches: ReadonlyArray<Cache<unknown>>, action: () => Promise<R>): Promise<R> {
  const before = caches.map(received);
  const result = await action();
  await receivedMore(caches, before);
  return result;
}

/**
 * Holds back, once, the reply to the cache's L2 read of one Redis key: the command runs on the real Redis,
 * only the moment the cache sees its answer is delayed (a slow reply path), so a test can make something
 * happen between "Redis answered" and "the cache acted on the answer". Deterministic, unlike a timing race.
 */
function replyGate(client: Redis): { hold(valueKey: string): { executed: Deferred<void>; release: Deferred<void> } } {
  type CallBuffer = (command: string, args: Array<string | Buffer | number>) => Promise<unknown>;
  const original = client.callBuffer.bind(client) as CallBuffer;
  let armed: { key: string; executed: Deferred<void>; release: Deferred<void> } | undefined;
  (client as unknown as { callBuffer: CallBuffer }).callBuffer = async (command, args) => {
    const reply = await original(command, args);
    const gate = armed;
    // The READ script: EVALSHA <sha> 2 <value key> <version key>, no arguments.
    if (gate !== undefined && /^EVAL/i.test(command) && args.length === 4 && args[2] === gate.key) {
      armed = undefined;
      gate.executed.resolve();
      await gate.release.promise;
    }
    return reply;
  };
  return {
    hold(valueKey) {
      armed = { key: valueKey, executed: deferred(), release: deferred() };
      return armed;
    },
  };
}

/**
 * Records the scripts the cache sends through `client` (the real commands still run): `read` for the L2 read
 * (two keys, no arguments), `change` for anything that can write (write, fill, delete, tag).
 */
function recordScripts(client: Redis): Array<'read' | 'change'> {
  type CallBuffer = (command: string, args: Array<string | Buffer | number>) => Promise<unknown>;
  const original = client.callBuffer.bind(client) as CallBuffer;
  const sent: Array<'read' | 'change'> = [];
  (client as unknown as { callBuffer: CallBuffer }).callBuffer = (command, args) => {
    if (/^EVAL/i.test(command)) sent.push(args.length === 4 && args[1] === 2 ? 'read' : 'change');
    return original(command, args);
  };
  return sent;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/** A redis-server child process on a free port, no persistence; this test owns it and stops it by PID. */
class PrivateRedis {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort());
    closers.push(() => server.stop());
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    this.#child = spawn('/usr/bin/redis-server', args, { stdio: 'ignore' });
    await waitFor(() => ping(this.port), 10_000, `redis-server on port ${this.port} to answer PING`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid, 'SIGTERM');
    await waitFor(() => child.exitCode !== null || child.signalCode !== null, 10_000, 'redis-server to exit');
  }

  /** Client options that fail commands fast while the server is down, and reconnect quickly. */
  clientOptions(): ClientOptions {
    return { host: '127.0.0.1', port: this.port, maxRetriesPerRequest: 1, retryStrategy: () => 50 };
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. get / set / delete / invalidate / clear, stats
// ---------------------------------------------------------------------------------------------------------

describe('get: L1, then L2, then the loader; writes and stats', () => {
  it('loads once, stores the loaded value in L2 (version 0) and L1, then serves L1; another instance reads L2', async () => {
    const w = new World();
    const a = await w.instance<{ name: string }>();
    const b = await w.instance<{ name: string }>();
    let loads = 0;
    const loader = (key: string): Promise<{ name: string }> => {
      loads++;
      return Promise.resolve({ name: `loaded ${key}` });
    };

    expect(await a.cache.get('k')).toBeUndefined();
    expect(a.cache.stats()).toMatchObject({ l1: { hits: 0, misses: 1, size: 0 }, l2: { hits: 0, misses: 1 } });

    expect(await a.cache.get('k', loader)).toEqual({ name: 'loaded k' });
    expect(loads).toBe(1);
    expect(await stored(w.ns, 'k')).toEqual({ version: 0, value: { name: 'loaded k' } });
    expect(a.cache.stats()).toMatchObject({
      l1: { hits: 0, misses: 2, size: 1 },
      l2: { hits: 0, misses: 2, errors: 0 },
      loads: 1,
    });

    expect(await a.cache.get('k', loader)).toEqual({ name: 'loaded k' });
    expect(loads).toBe(1);
    expect(a.cache.stats()).toMatchObject({ l1: { hits: 1, misses: 2 }, l2: { hits: 0, misses: 2 }, loads: 1 });

    // B never loaded it: L2 answers, then B's L1.
    expect(await b.cache.get('k', loader)).toEqual({ name: 'loaded k' });
    expect(await b.cache.get('k')).toEqual({ name: 'loaded k' });
    expect(loads).toBe(1);
    expect(b.cache.stats()).toMatchObject({ l1: { hits: 1, misses: 1, size: 1 }, l2: { hits: 1, misses: 0 } });
  });

  it('a loader answering undefined caches nothing: the next get calls it again', async () => {
    const w = new World();
    const a = await w.instance();
    let loads = 0;
    const loader = (): Promise<string> => {
      loads++;
      return Promise.resolve(undefined as unknown as string);
    };
    expect(await a.cache.get('nothing', loader)).toBeUndefined();
    expect(await a.cache.get('nothing', loader)).toBeUndefined();
    expect(loads).toBe(2);
    expect(await stored(w.ns, 'nothing')).toBeUndefined();
    expect(a.cache.stats().l1.size).toBe(0);
  });

  it('set writes L2 under a new version and evicts the older copy everywhere; the writer keeps its own copy', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'one'));
    expect(await stored(w.ns, 'k')).toEqual({ version: 1, value: 'one' });
    expect(await versionOf(w.ns, 'k')).toBe(1);
    expect(await b.cache.get('k')).toBe('one'); // L2
    expect(await b.cache.get('k')).toBe('one'); // L1
    expect(b.cache.stats()).toMatchObject({ l1: { hits: 1 }, l2: { hits: 1 } });

    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'two'));
    expect(await stored(w.ns, 'k')).toEqual({ version: 2, value: 'two' });
    expect(b.cache.stats().invalidations.evicted).toBe(1);
    expect(await b.cache.get('k')).toBe('two');
    expect(b.cache.stats().l2.hits).toBe(2);

    // The writer filled its own L1 with what it wrote; its own invalidation (same version) did not evict it.
    const hits = a.cache.stats().l1.hits;
    expect(await a.cache.get('k')).toBe('two');
    expect(a.cache.stats().l1.hits).toBe(hits + 1);
    expect(a.cache.stats()).toMatchObject({
      l2: { hits: 0, misses: 0 },
      invalidations: { sent: 2, received: 2, evicted: 0, pending: 0 },
      flushes: { disconnect: 0, gap: 0, clear: 0 },
      bypassing: false,
    });
    expect(b.cache.stats().invalidations).toMatchObject({ sent: 0, received: 2 });
    expect(b.cache.stats().propagationMs.count).toBe(2);
  });

  it('delete and invalidate(keys) remove values from L2 under new versions and from every L1', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    for (const key of ['k', 'x', 'y', 'z']) await andDelivered([b.cache], () => a.cache.set(key, `${key}1`));
    for (const key of ['k', 'x', 'y', 'z']) {
      expect(await b.cache.get(key)).toBe(`${key}1`);
      expect(await b.cache.get(key)).toBe(`${key}1`);
    }
    expect(b.cache.stats().l1.size).toBe(4);

    await andDelivered([a.cache, b.cache], () => a.cache.delete('k'));
    expect(await stored(w.ns, 'k')).toBeUndefined();
    expect(await versionOf(w.ns, 'k')).toBe(2); // the version counter moves on: it never goes back
    expect(await a.cache.get('k')).toBeUndefined();
    expect(await b.cache.get('k')).toBeUndefined();

    await andDelivered([a.cache, b.cache], () => b.cache.invalidate(['x', 'y']));
    for (const cache of [a.cache, b.cache]) {
      expect(await cache.get('x')).toBeUndefined();
      expect(await cache.get('y')).toBeUndefined();
      expect(await cache.get('z')).toBe('z1');
    }
    expect(await stored(w.ns, 'x')).toBeUndefined();
    expect(await stored(w.ns, 'y')).toBeUndefined();
    expect(await stored(w.ns, 'z')).toEqual({ version: 1, value: 'z1' });
    expect(await versionOf(w.ns, 'x')).toBe(2);
    // Nothing was ever missed: no gap flush anywhere.
    expect(a.cache.stats().flushes.gap + b.cache.stats().flushes.gap).toBe(0);
  });

  it('clear deletes the namespace values (version counters stay) and flushes every L1', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    for (const key of ['c1', 'c2']) await andDelivered([b.cache], () => a.cache.set(key, key, { tags: ['t'] }));
    expect(await b.cache.get('c1')).toBe('c1');
    expect(b.cache.stats().l1.size).toBe(1);
    const other = `${w.ns}x`; // a neighbour namespace must not be touched
    namespaces.add(other);
    await admin.set(`ferry:cache:${other}:v:c1`, '1|"neighbour"');

    await andDelivered([b.cache], () => a.cache.clear());
    expect(a.cache.stats().flushes.clear).toBe(1);
    expect(b.cache.stats().flushes.clear).toBe(1);
    expect(a.cache.stats().l1.size).toBe(0);
    expect(b.cache.stats().l1.size).toBe(0);
    expect(await scanKeys(admin, `ferry:cache:${w.ns}:v:*`)).toEqual([]);
    expect(await scanKeys(admin, `ferry:cache:${w.ns}:t:*`)).toEqual([]);
    expect(await scanKeys(admin, `ferry:cache:${w.ns}:n:*`)).toHaveLength(2);
    expect(await admin.get(`ferry:cache:${other}:v:c1`)).toBe('1|"neighbour"');
    expect(await a.cache.get('c1')).toBeUndefined();
    expect(await b.cache.get('c2')).toBeUndefined();
    // A later write gets a version above every earlier one.
    await a.cache.set('c1', 'again');
    expect(await stored(w.ns, 'c1')).toEqual({ version: 2, value: 'again' });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2. Single flight
// ---------------------------------------------------------------------------------------------------------

describe('single flight', () => {
  it('1,000 concurrent gets of a missing key call the loader once and all get its result', async () => {
    const w = new World();
    const a = await w.instance<{ id: number }>();
    const started = deferred();
    const release = deferred<{ id: number }>();
    let calls = 0;
    const loader = (): Promise<{ id: number }> => {
      calls++;
      started.resolve();
      return release.promise;
    };
    const gets = Array.from({ length: 500 }, () => a.cache.get('hot', loader));
    await started.promise; // the load is under way (L2 read done): 500 more join it mid-flight
    gets.push(...Array.from({ length: 500 }, () => a.cache.get('hot', loader)));
    const value = { id: 42 };
    release.resolve(value);
    const results = await Promise.all(gets);
    expect(calls).toBe(1);
    expect(results).toHaveLength(1_000);
    expect(results.every((result) => result === value)).toBe(true);
    expect(a.cache.stats()).toMatchObject({ loads: 1, l1: { misses: 1_000 }, l2: { misses: 1 } });
    expect(await stored(w.ns, 'hot')).toEqual({ version: 0, value: { id: 42 } });

    const again = await Promise.all(Array.from({ length: 1_000 }, () => a.cache.get('hot', loader)));
    expect(again.every((result) => result === value)).toBe(true);
    expect(calls).toBe(1);
    expect(a.cache.stats().l1.hits).toBe(1_000);
  });

  it('a failing load rejects every waiter once, and is not remembered: the next get loads again', async () => {
    const w = new World();
    const a = await w.instance();
    const release = deferred<string>();
    let calls = 0;
    const failing = (): Promise<string> => {
      calls++;
      return release.promise;
    };
    const gets = Array.from({ length: 1_000 }, () =>
      a.cache.get('bad', failing).then(
        () => 'resolved',
        (error: unknown) => error,
      ),
    );
    await waitFor(() => calls === 1, 5_000, 'the loader to be called');
    const boom = new Error('source down');
    release.reject(boom);
    const outcomes = await Promise.all(gets);
    expect(calls).toBe(1);
    expect(outcomes.every((outcome) => outcome === boom)).toBe(true);
    expect(await a.cache.get('bad', () => 'fine')).toBe('fine');
    expect(await stored(w.ns, 'bad')).toEqual({ version: 0, value: 'fine' });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 3. Versions
// ---------------------------------------------------------------------------------------------------------

describe('versions', () => {
  it('an invalidation carrying an older (or the same) version never evicts the newer value an instance holds', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    const send = await w.sender();
    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'v1'));
    await andDelivered([a.cache, b.cache], () => b.cache.set('k', 'v2'));
    expect(await stored(w.ns, 'k')).toEqual({ version: 2, value: 'v2' });
    expect(a.cache.stats().invalidations.evicted).toBe(1); // v1 went
    expect(await a.cache.get('k')).toBe('v2'); // from L2, now in A's L1 at version 2
    expect(a.cache.stats().l2.hits).toBe(1);

    // A replayed, delayed or forged invalidation of version 1 (and one of version 2 itself).
    const fake = uniqueName('fake-sender');
    await andDelivered([a.cache, b.cache], () => send({ s: fake, q: 1, t: Date.now(), k: [['k', 1]] }));
    await andDelivered([a.cache, b.cache], () => send({ s: fake, q: 2, t: Date.now(), k: [['k', 2]] }));
    for (const cache of [a.cache, b.cache]) {
      const before = cache.stats();
      for (let i = 0; i < 3; i++) expect(await cache.get('k')).toBe('v2');
      const after = cache.stats();
      expect(after.l1.hits).toBe(before.l1.hits + 3);
      expect(after.l2.hits).toBe(before.l2.hits);
      expect(after.invalidations.evicted).toBe(before.invalidations.evicted);
    }

    // Control: the hand-made event does reach the cache and does evict when its version is newer.
    const evicted = a.cache.stats().invalidations.evicted;
    await andDelivered([a.cache], () => send({ s: fake, q: 3, t: Date.now(), k: [['k', 3]] }));
    expect(a.cache.stats().invalidations.evicted).toBe(evicted + 1);
    expect(a.cache.stats().l1.size).toBe(0);
  });

  it('an older invalidation arriving after the key left L1 does not stop the newer value being cached', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    const send = await w.sender();
    await andDelivered([a.cache], () => b.cache.set('k', 'v1'));
    await andDelivered([a.cache], () => b.cache.set('k', 'v2'));
    await andDelivered([a.cache], () => send({ s: uniqueName('fake'), q: 1, t: Date.now(), k: [['k', 1]] }));
    expect(await a.cache.get('k')).toBe('v2'); // L2
    expect(await a.cache.get('k')).toBe('v2'); // L1
    expect(a.cache.stats()).toMatchObject({ l1: { hits: 1 }, l2: { hits: 1 } });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 4. Read-populate race
// ---------------------------------------------------------------------------------------------------------

describe('a load that raced with a write never installs the older value', () => {
  it.each(['set', 'delete'] as const)(
    'loader path: B %ss the key while A loads; A returns what it loaded but caches nothing (L1 nor L2)',
    async (write) => {
      const w = new World();
      const a = await w.instance();
      const b = await w.instance();
      const started = deferred();
      const release = deferred<string>();
      const loading = a.cache.get('k', () => {
        started.resolve();
        return release.promise;
      });
      await started.promise; // A has read L2 (a miss at version 0) and is loading
      await andDelivered([a.cache], () => (write === 'set' ? b.cache.set('k', 'new') : b.cache.delete('k')));
      release.resolve('old');
      expect(await loading).toBe('old'); // what that caller's load produced
      expect(a.cache.stats().l1.size).toBe(0);
      const expected = write === 'set' ? 'new' : undefined;
      expect(await stored(w.ns, 'k')).toEqual(write === 'set' ? { version: 1, value: 'new' } : undefined);
      expect(await a.cache.get('k')).toBe(expected);
      expect(await a.cache.get('k')).toBe(expected);
      expect(await b.cache.get('k')).toBe(expected);
    },
  );

  it('L2-hit path: Redis answers the old value, B writes the new one before A acts on the answer: A does not fill L1', async () => {
    const w = new World();
    const redisA = w.redis();
    const gate = replyGate(redisA);
    const a = await w.instance({ redis: redisA });
    const b = await w.instance();
    await andDelivered([a.cache], () => b.cache.set('k', 'old'));
    const held = gate.hold(`ferry:cache:${w.ns}:v:k`);
    const reading = a.cache.get('k');
    await held.executed.promise; // Redis has answered A's read: 'old' at version 1
    await andDelivered([a.cache], () => b.cache.set('k', 'new')); // version 2, announced to A
    held.release.resolve();
    expect(await reading).toBe('old');
    expect(a.cache.stats().l1.size).toBe(0);
    expect(await a.cache.get('k')).toBe('new');
    expect(await a.cache.get('k')).toBe('new');
    expect(a.cache.stats().l1.hits).toBe(1);
    expect(await stored(w.ns, 'k')).toEqual({ version: 2, value: 'new' });
  });

  it('a read that began before an L1 flush (sequence gap) does not fill L1 after it', async () => {
    const w = new World();
    const redisA = w.redis();
    const gate = replyGate(redisA);
    const a = await w.instance({ redis: redisA });
    const send = await w.sender();
    await andDelivered([a.cache], () => a.cache.set('k', 'v1'));
    await andDelivered([a.cache], () => send({ s: 'fake', q: 1, t: Date.now(), k: [] }));
    await andDelivered([a.cache], () => send({ s: 'fake', q: 3, t: Date.now(), k: [] })); // flushes A's L1
    expect(a.cache.stats().flushes.gap).toBe(1);
    const held = gate.hold(`ferry:cache:${w.ns}:v:k`);
    const reading = a.cache.get('k');
    await held.executed.promise;
    await andDelivered([a.cache], () => send({ s: 'fake', q: 5, t: Date.now(), k: [] })); // a second gap
    expect(a.cache.stats().flushes.gap).toBe(2);
    held.release.resolve();
    expect(await reading).toBe('v1');
    expect(a.cache.stats().l1.size).toBe(0);
  });

  it('a read that began before a broker disconnect does not fill L1 after the reconnect', async () => {
    const w = new World();
    const redisA = w.redis();
    const gate = replyGate(redisA);
    const a = await w.instance({ redis: redisA });
    const b = await w.instance();
    await andDelivered([a.cache], () => b.cache.set('k', 'v1')); // in L2 only, as far as A is concerned
    const held = gate.hold(`ferry:cache:${w.ns}:v:k`);
    const reading = a.cache.get('k');
    await held.executed.promise; // Redis answered 'v1' at version 1
    memoryHub(w.hub).stop(a.connectionName); // A may miss invalidations from here on...
    memoryHub(w.hub).start(a.connectionName); // ...and is back: it can vouch for nothing read before
    expect(a.cache.stats()).toMatchObject({ bypassing: false, flushes: { disconnect: 2 } });
    held.release.resolve();
    expect(await reading).toBe('v1');
    expect(a.cache.stats().l1.size).toBe(0);
    expect(await a.cache.get('k')).toBe('v1'); // a read after the reconnect does fill
    expect(a.cache.stats().l1.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 5. Gap detection
// ---------------------------------------------------------------------------------------------------------

describe('sequence gaps', () => {
  it('a sender whose sequence jumps flushes L1; reordering, duplicates, new senders and own events do not', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    const send = await w.sender();
    const fake = uniqueName('fake');
    await andDelivered([a.cache], () => b.cache.set('k', 'v1'));
    expect(await a.cache.get('k')).toBe('v1');
    expect(await a.cache.get('k')).toBe('v1');
    const gapsAt = (): number => a.cache.stats().flushes.gap;

    await andDelivered([a.cache], () => send({ s: fake, q: 1, t: Date.now(), k: [] }));
    expect(gapsAt()).toBe(0);
    let stats = a.cache.stats();
    expect(await a.cache.get('k')).toBe('v1');
    expect(a.cache.stats().l1.hits).toBe(stats.l1.hits + 1);

    await andDelivered([a.cache], () => send({ s: fake, q: 3, t: Date.now(), k: [] })); // q=2 was missed
    expect(gapsAt()).toBe(1);
    expect(a.cache.stats().l1.size).toBe(0);
    stats = a.cache.stats();
    expect(await a.cache.get('k')).toBe('v1');
    expect(a.cache.stats().l1.hits).toBe(stats.l1.hits);
    expect(a.cache.stats().l2.hits).toBe(stats.l2.hits + 1);

    // Late, duplicate and consecutive events; a new sender starting high; B's own steady sequence.
    for (const q of [2, 3, 4]) await andDelivered([a.cache], () => send({ s: fake, q, t: Date.now(), k: [] }));
    await andDelivered([a.cache], () => send({ s: uniqueName('late-joiner'), q: 7, t: Date.now(), k: [] }));
    for (let i = 0; i < 5; i++) await andDelivered([a.cache], () => b.cache.set(`other-${i}`, 'x'));
    expect(gapsAt()).toBe(1);

    await andDelivered([a.cache], () => send({ s: fake, q: 6, t: Date.now(), k: [] })); // q=5 missed
    expect(gapsAt()).toBe(2);
    await waitFor(() => b.cache.stats().flushes.gap === 2, 5_000, 'B to see the same two gaps');
  });

  it('ignores events that are not invalidations (no throw, nothing evicted, not counted)', async () => {
    const w = new World();
    const a = await w.instance();
    const send = await w.sender();
    await andDelivered([a.cache], () => a.cache.set('k', 'v1'));
    const before = a.cache.stats();
    for (const junk of [{ hello: 1 }, { s: 1, q: 1 }, { s: 'x', q: 'nine' }]) await send(junk);
    await andDelivered([a.cache], () => send({ s: 'fake', q: 1, t: Date.now(), k: [['k', 'nan'], 'garbage'] }));
    const after = a.cache.stats();
    expect(after.invalidations.received).toBe(before.invalidations.received + 1);
    expect(after.invalidations.evicted).toBe(0);
    expect(await a.cache.get('k')).toBe('v1');
    expect(a.cache.stats().l1.hits).toBe(before.l1.hits + 1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 6. Broker disconnect
// ---------------------------------------------------------------------------------------------------------

describe('broker disconnect', () => {
  it('from the disconnected event on, no L1 hit (L2 serves the newest value though the invalidation was lost); L1 again after connected', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'v1'));
    expect(await a.cache.get('k')).toBe('v1');
    expect(a.cache.stats().l1.hits).toBe(1);

    const atDisconnect: Array<{ bypassing: boolean; hitsAdded: number; value: Promise<string | undefined> }> = [];
    a.broker.on('disconnected', () => {
      const hits = a.cache.stats().l1.hits;
      const value = a.cache.get('k'); // v1 is still the newest value, but A can no longer vouch for L1
      atDisconnect.push({ bypassing: a.cache.stats().bypassing, hitsAdded: a.cache.stats().l1.hits - hits, value });
    });
    memoryHub(w.hub).stop(a.connectionName);
    expect(atDisconnect).toHaveLength(1);
    expect(atDisconnect[0]).toMatchObject({ bypassing: true, hitsAdded: 0 });
    expect(await atDisconnect[0]!.value).toBe('v1');
    expect(a.cache.stats()).toMatchObject({ bypassing: true, flushes: { disconnect: 1 }, l1: { size: 0 } });

    // B writes while A is cut off: A's copy of the invalidation is lost (its private subscription queue went).
    const aReceived = received(a.cache);
    await andDelivered([b.cache], () => b.cache.set('k', 'v2'));
    const before = a.cache.stats();
    for (let i = 0; i < 5; i++) expect(await a.cache.get('k')).toBe('v2');
    expect(a.cache.stats().l1.hits).toBe(before.l1.hits);
    expect(a.cache.stats().l2.hits).toBe(before.l2.hits + 5);
    expect(a.cache.stats().l1.size).toBe(0); // and nothing filled meanwhile

    memoryHub(w.hub).start(a.connectionName);
    await waitFor(() => !a.cache.stats().bypassing, 5_000, 'A to stop bypassing after connected');
    expect(a.broker.health().status).toBe('up');
    expect(received(a.cache)).toBe(aReceived); // the scenario is real: the event never reached A
    expect(await a.cache.get('k')).toBe('v2'); // L2, fills L1
    const hits = a.cache.stats().l1.hits;
    expect(await a.cache.get('k')).toBe('v2');
    expect(a.cache.stats().l1.hits).toBe(hits + 1);
    // And invalidations flow to A again.
    await andDelivered([a.cache], () => b.cache.set('k', 'v3'));
    expect(await a.cache.get('k')).toBe('v3');
  });

  it('a drop that heals by itself: what was written meanwhile is not served stale from L1 afterwards', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'v1'));
    expect(await a.cache.get('k')).toBe('v1');
    const connected = deferred();
    a.broker.on('connected', () => connected.resolve());
    memoryHub(w.hub).dropConnections(200, a.connectionName);
    await andDelivered([b.cache], () => b.cache.set('k', 'v2'));
    await connected.promise;
    await waitFor(() => !a.cache.stats().bypassing, 5_000, 'A to stop bypassing');
    expect(await a.cache.get('k')).toBe('v2');
    expect(await a.cache.get('k')).toBe('v2');
    expect(a.cache.stats().flushes.disconnect).toBeGreaterThanOrEqual(1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 7. Redis outage (a private redis-server)
// ---------------------------------------------------------------------------------------------------------

describe('Redis outage', () => {
  it('get falls back to the loader (uncached), get without loader and set reject FERRY_CACHE_STORE, set publishes nothing; nothing is written back after the restart', async () => {
    const server = await PrivateRedis.start();
    const w = new World();
    const a = await w.instance({ redis: w.redis(server.clientOptions()) });
    const b = await w.instance({ redis: w.redis(server.clientOptions()) });
    await andDelivered([a.cache, b.cache], () => a.cache.set('warm', 'w1'));

    await server.stop();
    await waitFor(() => a.redis.status !== 'ready' && b.redis.status !== 'ready', 5_000, 'the clients to notice');
    // A command sent now could sit in the client's offline queue and run once Redis is back: the fallback
    // must not send any write, whatever the client's retry settings.
    const scripts = recordScripts(a.redis);

    let loads = 0;
    const loader = (): string => {
      loads++;
      return 'from-source';
    };
    expect(await a.cache.get('cold', loader)).toBe('from-source');
    expect(loads).toBe(1);
    expect(a.cache.stats().l2.errors).toBeGreaterThan(0);
    expect(a.cache.stats().loads).toBe(1);
    // Not put in L1 either: without a loader the next get must go to (the failing) Redis.
    expect(await rejection(a.cache.get('cold'))).toMatchObject({ code: ErrorCode.CACHE_STORE });
    expect(await a.cache.get('cold', loader)).toBe('from-source');
    expect(loads).toBe(2);
    expect(scripts).toEqual(['read', 'read', 'read']);

    const sent = a.cache.stats().invalidations.sent;
    const bReceived = received(b.cache);
    expect(await rejection(a.cache.set('cold', 'written-during-outage'))).toMatchObject({
      code: ErrorCode.CACHE_STORE,
    });
    expect(await rejection(a.cache.delete('warm'))).toMatchObject({ code: ErrorCode.CACHE_STORE });
    await observeFor(300); // an event, if one were published, would reach B well within this
    expect(a.cache.stats().invalidations).toMatchObject({ sent, pending: 0 });
    expect(received(b.cache)).toBe(bReceived);

    await server.start();
    await waitFor(() => a.redis.status === 'ready' && b.redis.status === 'ready', 10_000, 'the clients to reconnect');
    await a.redis.ping(); // after anything A's client might have queued during the outage
    await b.redis.ping();
    expect(await a.redis.keys('*')).toEqual([]); // no value, no version, no tag: nothing written back
    expect(await a.cache.get('cold')).toBeUndefined();
    expect(loads).toBe(2);
    expect(await a.cache.get('cold', loader)).toBe('from-source'); // a normal load again, now cached
    expect(await stored(w.ns, 'cold', a.redis)).toEqual({ version: 0, value: 'from-source' });
  });

  it('onStoreError "throw": get with a loader rejects FERRY_CACHE_STORE instead of loading', async () => {
    const server = await PrivateRedis.start();
    const w = new World();
    const a = await w.instance({ redis: w.redis(server.clientOptions()), cache: { onStoreError: 'throw' } });
    await server.stop();
    await waitFor(() => a.redis.status !== 'ready', 5_000, 'the client to notice');
    let loads = 0;
    const error = await rejection(a.cache.get('k', () => String(++loads)));
    expect(error).toMatchObject({ code: ErrorCode.CACHE_STORE });
    expect(loads).toBe(0);
  });

  // Version counters live in Redis only: after a restart without persistence the next write of a key gets
  // version 1 again, below what L1 may hold. The cache flushes L1 when its Redis client reconnects.
  it('after Redis restarts without its data, a new write on B still evicts the older copy A holds in L1 without its data, a new write on B still evicts the older copy A holds in L1', async () => {
    const server = await PrivateRedis.start();
    const w = new World();
    const a = await w.instance({ redis: w.redis(server.clientOptions()) });
    const b = await w.instance({ redis: w.redis(server.clientOptions()) });
    await andDelivered([a.cache, b.cache], () => a.cache.set('k', 'v1')); // version 1, in A's L1
    expect(await a.cache.get('k')).toBe('v1');

    await server.stop();
    await server.start();
    await waitFor(() => a.redis.status === 'ready' && b.redis.status === 'ready', 10_000, 'the clients to reconnect');

    await andDelivered([a.cache, b.cache], () => b.cache.set('k', 'v2'));
    expect(await stored(w.ns, 'k', b.redis)).toEqual({ version: 1, value: 'v2' }); // the counter started over
    expect(await a.cache.get('k')).toBe('v2'); // fails: A serves 'v1' from L1
  });
});

// ---------------------------------------------------------------------------------------------------------
// 8. Publish failure and retry
// ---------------------------------------------------------------------------------------------------------

describe('publish failure after the L2 write', () => {
  it('publish middleware failing: set resolves with the invalidation pending; it goes out (newest version per key) once publishing works', async () => {
    const w = new World();
    let failing = false;
    const failPublish: PublishMiddleware = async (ctx, next) => {
      if (failing && ctx.destination.name === w.topicName) throw new Error('injected publish failure');
      await next();
    };
    const a = await w.instance({ connect: { middleware: { publish: [failPublish] } } });
    const b = await w.instance();
    const events = await w.observe();
    await andDelivered([b.cache], () => a.cache.set('k', 'v1'));
    await andDelivered([b.cache], () => a.cache.set('j', 'j1'));
    expect(await b.cache.get('k')).toBe('v1');
    expect(await b.cache.get('j')).toBe('j1');

    failing = true;
    const sent = a.cache.stats().invalidations.sent;
    await a.cache.set('k', 'v2');
    await a.cache.set('k', 'v3');
    await a.cache.set('j', 'j2');
    expect(a.cache.stats().invalidations).toMatchObject({ sent, pending: 2 });
    expect(await stored(w.ns, 'k')).toEqual({ version: 3, value: 'v3' });
    expect(await stored(w.ns, 'j')).toEqual({ version: 2, value: 'j2' });
    expect(await a.cache.get('k')).toBe('v3'); // the writer itself is current
    expect(await b.cache.get('k')).toBe('v1'); // B has not been told yet (the failure is real)

    failing = false;
    await waitFor(
      () => a.cache.stats().invalidations.pending === 0 && b.cache.stats().l1.size === 0,
      10_000,
      () => `the retry to go out (A ${JSON.stringify(a.cache.stats().invalidations)}, B L1 ${b.cache.stats().l1.size})`,
    );
    expect(await b.cache.get('k')).toBe('v3');
    expect(await b.cache.get('j')).toBe('j2');
    expect(a.cache.stats().invalidations.sent).toBe(sent + 1);
    // One retried event with the newest version of each key; the superseded k@2 never went out.
    await waitFor(() => events.length === 3, 5_000, 'the observer to get the retried event');
    expect(events.map((e) => (e as { k: unknown }).k)).toEqual([
      [['k', 1]],
      [['j', 1]],
      [
        ['k', 3],
        ['j', 2],
      ],
    ]);
  });

  it("the instance's own connection cut (publishTimeout 100 ms): set resolves pending; after the reconnect the invalidation reaches the others", async () => {
    const w = new World();
    const a = await w.instance({ connect: { publishTimeout: 100 } });
    const b = await w.instance();
    await andDelivered([b.cache], () => a.cache.set('k', 'v1'));
    expect(await b.cache.get('k')).toBe('v1');
    expect(await b.cache.get('k')).toBe('v1');

    memoryHub(w.hub).stop(a.connectionName);
    await a.cache.set('k', 'v2');
    expect(a.cache.stats().invalidations.pending).toBe(1);
    expect(await stored(w.ns, 'k')).toEqual({ version: 2, value: 'v2' });
    expect(await b.cache.get('k')).toBe('v1'); // not told yet

    memoryHub(w.hub).start(a.connectionName);
    await waitFor(
      () => a.cache.stats().invalidations.pending === 0 && b.cache.stats().l1.size === 0,
      10_000,
      'the pending invalidation to go out after the reconnect',
    );
    expect(await b.cache.get('k')).toBe('v2');
  });
});

// ---------------------------------------------------------------------------------------------------------
// 9. Tags
// ---------------------------------------------------------------------------------------------------------

describe('tags', () => {
  it('invalidateTag evicts every key carrying the tag on every instance, and nothing else', async () => {
    const w = new World();
    const a = await w.instance();
    const b = await w.instance();
    const c = await w.instance();
    const all = [a.cache, b.cache, c.cache];
    await andDelivered(all, () => a.cache.set('u1', 'one', { tags: ['team-x'] }));
    await andDelivered(all, () => a.cache.set('u2', 'two', { tags: ['team-x', 'admins'] }));
    await andDelivered(all, () => a.cache.set('u3', 'three', { tags: ['team-y'] }));
    for (const cache of all) for (const key of ['u1', 'u2', 'u3']) await cache.get(key);
    for (const cache of all) expect(cache.stats().l1.size).toBe(3);

    await andDelivered(all, () => c.cache.invalidateTag('team-x'));
    for (const cache of all) {
      expect(cache.stats().l1.size).toBe(1);
      expect(await cache.get('u1')).toBeUndefined();
      expect(await cache.get('u2')).toBeUndefined();
      const hits = cache.stats().l1.hits;
      expect(await cache.get('u3')).toBe('three');
      expect(cache.stats().l1.hits).toBe(hits + 1);
    }
    expect(await stored(w.ns, 'u1')).toBeUndefined();
    expect(await stored(w.ns, 'u2')).toBeUndefined();
    expect(await stored(w.ns, 'u3')).toEqual({ version: 1, value: 'three' });
    expect(await admin.exists(`ferry:cache:${w.ns}:t:team-x`)).toBe(0);

    // u1 written again without the tag: a second invalidation of the tag leaves it alone.
    await andDelivered(all, () => a.cache.set('u1', 'one-again'));
    await andDelivered([b.cache], () => c.cache.invalidateTag('team-x').then(() => c.cache.delete('nope')));
    expect(await b.cache.get('u1')).toBe('one-again');
    expect(await stored(w.ns, 'u1')).toEqual({ version: 3, value: 'one-again' });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 10. RedisIdempotencyStore with core's idempotency() middleware
// ---------------------------------------------------------------------------------------------------------

describe('RedisIdempotencyStore', () => {
  it('one message id published 3 times, consumed by two brokers sharing the store: the handler runs once', async () => {
    const w = new World();
    const q = queue(uniqueName('orders'));
    const prefix = `ferry:cache:${w.ns}:idem:`; // under the namespace, so the cleanup deletes it
    let deliveries = 0;
    let acked = 0;
    const handled: string[] = [];
    const perBroker = [0, 0];
    const counting: ConsumeMiddleware = async (_ctx, next) => {
      deliveries++;
      await next();
      acked++;
    };
    for (const index of [0, 1]) {
      const broker = await w.broker({ retry: { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 20 } });
      const store = new RedisIdempotencyStore(w.redis(), prefix);
      const consumer = broker.consumer({ middleware: [counting, idempotency({ store })] });
      await consumer.subscribe(q, async (message) => {
        perBroker[index]!++;
        handled.push(message.id);
        // Hold the first run until every copy has arrived, so the others meet the claim "processing".
        await waitFor(() => deliveries >= 3, 5_000, 'the other copies to arrive');
      });
    }
    const producer = (await w.broker()).producer();
    for (let i = 0; i < 3; i++) await producer.publish(q, { id: 'order-1', type: 'order.placed', data: { copy: i } });

    await waitFor(
      () => acked === 3,
      15_000,
      () => `the 3 copies to be acked (acked ${acked}, deliveries ${deliveries})`,
    );
    await observeFor(200); // no further run may happen
    expect(handled).toEqual(['order-1']);
    expect(deliveries).toBeGreaterThanOrEqual(3);
    expect(memoryHub(w.hub).stats(q.name)).toMatchObject({ ready: 0, unacked: 0 });
    const keys = await scanKeys(admin, `${prefix}*`);
    expect(keys).toHaveLength(1);
    expect(await admin.get(keys[0]!)).toBe('done');
    memoryHub(w.hub).deleteQueue(q.name);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 11. Inversify
// ---------------------------------------------------------------------------------------------------------

describe('@ferry/invalidation/inversify', () => {
  it('binds a cache per namespace on the injected broker and Redis; unbindAllAsync closes cache, broker and client', async () => {
    const w = new World();
    interface User {
      readonly name: string;
    }
    const USERS = cacheToken<User>(w.ns);

    @injectable()
    class UserDirectory {
      constructor(
        @inject(USERS) readonly users: Cache<User>,
        @inject(FERRY_BROKER) readonly broker: Broker,
      ) {}
    }

    const container = (): Container => {
      const c = new Container();
      c.load(ferryModule({ url: w.url }), redisModule(), cacheModule(USERS, { namespace: w.ns }));
      c.bind(UserDirectory).toSelf().inSingletonScope();
      closers.push(() => c.unbindAllAsync());
      return c;
    };
    const c1 = container();
    const c2 = container();
    const one = await c1.getAsync(UserDirectory);
    const two = await c2.getAsync(UserDirectory);
    expect(one.users).toBe(await c1.getAsync(USERS));
    expect(one.broker).toBe(await c1.getAsync(FERRY_BROKER));
    expect(one.broker.transport).toBe('memory');
    expect(one.users.namespace).toBe(w.ns);
    expect(one.users).not.toBe(two.users);

    await one.users.set('u-1', { name: 'Ada' });
    expect(await two.users.get('u-1')).toEqual({ name: 'Ada' });
    expect(await two.users.get('u-1')).toEqual({ name: 'Ada' });
    expect(two.users.stats().l1.hits).toBe(1);
    await one.users.set('u-1', { name: 'Grace' });
    // The invalidation travelled over the injected memory broker.
    await waitFor(() => two.users.stats().invalidations.evicted === 1, 5_000, 'the other container to evict');
    expect(await two.users.get('u-1')).toEqual({ name: 'Grace' });

    const redis = await c1.getAsync(FERRY_REDIS);
    expect(redis.status).toBe('ready');
    await c1.unbindAllAsync();
    await expect(one.users.set('u-1', { name: 'x' })).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(one.broker.health().status).toBe('down');
    await waitFor(
      () => redis.status === 'end',
      5_000,
      () => `the Redis client to end (status ${redis.status})`,
    );
    // The other container is untouched.
    expect(await two.users.get('u-1')).toEqual({ name: 'Grace' });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------------------

describe('lifecycle', () => {
  it('rejects an invalid namespace; close is idempotent and closes neither the given client nor the broker', async () => {
    const w = new World();
    const broker = await w.broker();
    const redis = w.redis();
    for (const namespace of ['', 'a:b', 'a b', 'x'.repeat(101), 'ns*']) {
      await expect(createCache({ broker, redis, namespace })).rejects.toMatchObject({
        code: ErrorCode.CONFIGURATION,
      });
    }
    const a = await createCache<string>({ broker, redis, namespace: w.ns });
    await a.set('k', 'v');
    await a.close();
    await a.close();
    expect(redis.status).toBe('ready');
    expect(broker.health().status).toBe('up');
    await expect(a.set('k', 'v')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(memoryHub(w.hub).queueNames()).toEqual([]); // its private subscription queue is gone
  });

  it('get on a closed cache rejects with FERRY_CLOSED (does not throw synchronously)', async () => {
    const w = new World();
    const a = await w.instance();
    await a.cache.close();
    let outcome: Promise<unknown>;
    try {
      outcome = a.cache.get('k').then(
        () => 'resolved',
        (error: unknown) => error,
      );
    } catch (error) {
      outcome = Promise.resolve(`threw synchronously: ${String(error)}`);
    }
    expect(await outcome).toMatchObject({ code: ErrorCode.CLOSED });
  });
});
