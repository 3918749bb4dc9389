/**
 * The user-cache example against the real Redis (127.0.0.1:6379) on every transport: memory, AMQP and
 * STOMP (RabbitMQ), MQTT (Mosquitto). Each test uses its own cache namespace, deletes its Redis keys
 * (`ferry:cache:<ns>:*`) afterwards and closes every instance it started. The last test runs the built
 * CLI (`tsc -b` first) on the in-memory transport and checks what it prints.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '@ferry/conformance';
import { type App, startApp } from '../src/app.js';
import type { User } from '../src/domain.js';
import { playScenario, UNTOUCHED_USER, UPDATE, UPDATED_USER } from '../src/scenario.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = 'examples/user-cache/dist/main.js';

const TRANSPORTS = [
  { name: 'memory', url: 'memory://' },
  { name: 'amqp', url: 'amqp://guest:guest@127.0.0.1:5672' },
  { name: 'mqtt', url: 'mqtt://127.0.0.1:1883' },
  { name: 'stomp', url: 'stomp://guest:guest@127.0.0.1:61613' },
] as const;

let admin: Redis;
let app: App | undefined;
const namespaces = new Set<string>();

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

afterAll(async () => {
  await admin.quit();
});

afterEach(async () => {
  try {
    await app?.close();
  } finally {
    app = undefined;
    for (const ns of namespaces) await deleteKeys(`ferry:cache:${ns}:*`);
    namespaces.clear();
  }
});

async function deleteKeys(pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
}

function namespace(): string {
  const ns = uniqueName('user-cache');
  namespaces.add(ns);
  return ns;
}

/** What an instance answers for u-1 now: UserService directly, OrderService through order o-1. */
async function readUser(instance: App['instances'][number]): Promise<User | undefined> {
  return instance.role === 'user-service'
    ? instance.service.getUser(UPDATED_USER)
    : (await instance.service.getOrder('o-1'))?.customer;
}

describe('user-cache example', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport.name}: an update on one UserService instance is evicted by every instance of both services`, async () => {
      const ns = namespace();
      app = await startApp({ url: transport.url, namespace: ns, redisUrl: REDIS_URL });
      expect(app.transport).toBe(transport.name);
      const result = await playScenario(app, { waitTimeoutMs: 5_000 });

      const ada = { id: UPDATED_USER, name: 'Ada Lovelace', email: 'ada@example.org' };
      const updated = { id: UPDATED_USER, ...UPDATE };
      const grace = { id: UNTOUCHED_USER, name: 'Grace Hopper', email: 'grace@example.org' };
      const reads = (phase: typeof result.before): unknown[] =>
        phase.map((read) => [read.instance, read.call, read.user.name, read.from]);
      // Before: the first reader loads from the database, the others find it in Redis, second reads hit L1.
      expect(reads(result.before)).toEqual([
        ['user-service-1', 'getUser(u-1)', ada.name, 'database'],
        ['user-service-1', 'getUser(u-1)', ada.name, 'L1'],
        ['user-service-2', 'getUser(u-1)', ada.name, 'Redis'],
        ['user-service-2', 'getUser(u-1)', ada.name, 'L1'],
        ['order-service-1', 'getOrder(o-1)', ada.name, 'Redis'],
        ['order-service-1', 'getOrder(o-1)', ada.name, 'L1'],
        ['order-service-1', 'getOrder(o-2)', grace.name, 'database'],
        ['order-service-2', 'getOrder(o-1)', ada.name, 'Redis'],
        ['order-service-2', 'getOrder(o-1)', ada.name, 'L1'],
        ['order-service-2', 'getOrder(o-2)', grace.name, 'Redis'],
      ]);
      // After: the writer serves its own write from L1; every other instance evicted and reloaded from
      // Redis; the user nobody wrote stayed in L1.
      expect(reads(result.after)).toEqual([
        ['user-service-1', 'getUser(u-1)', updated.name, 'L1'],
        ['user-service-1', 'getUser(u-1)', updated.name, 'L1'],
        ['user-service-2', 'getUser(u-1)', updated.name, 'Redis'],
        ['user-service-2', 'getUser(u-1)', updated.name, 'L1'],
        ['order-service-1', 'getOrder(o-1)', updated.name, 'Redis'],
        ['order-service-1', 'getOrder(o-1)', updated.name, 'L1'],
        ['order-service-1', 'getOrder(o-2)', grace.name, 'L1'],
        ['order-service-2', 'getOrder(o-1)', updated.name, 'Redis'],
        ['order-service-2', 'getOrder(o-1)', updated.name, 'L1'],
        ['order-service-2', 'getOrder(o-2)', grace.name, 'L1'],
      ]);
      for (const read of result.after) expect(read.user).toEqual(read.userId === UPDATED_USER ? updated : grace);

      const stats = Object.fromEntries(result.instances.map((instance) => [instance.name, instance.stats]));
      const counters = (name: string): unknown => {
        const s = stats[name]!;
        return [s.l1.hits, s.l1.misses, s.l2.hits, s.l2.misses, s.loads, s.l2.errors];
      };
      expect(counters('user-service-1')).toEqual([3, 1, 0, 1, 1, 0]);
      expect(counters('user-service-2')).toEqual([2, 2, 2, 0, 0, 0]);
      expect(counters('order-service-1')).toEqual([3, 3, 2, 1, 1, 0]);
      expect(counters('order-service-2')).toEqual([3, 3, 3, 0, 0, 0]);
      // Every instance held u-1 in L1 before the update. The writer's entry was replaced by set() (its own
      // echo evicts nothing); each of the three others counted exactly one eviction.
      expect(stats['user-service-1']!.invalidations).toEqual({ sent: 1, received: 1, evicted: 0, pending: 0 });
      for (const name of ['user-service-2', 'order-service-1', 'order-service-2']) {
        expect(stats[name]!.invalidations, name).toEqual({ sent: 0, received: 1, evicted: 1, pending: 0 });
      }
      for (const instance of result.instances) {
        expect(instance.receivedAfterMs, instance.name).toBeGreaterThanOrEqual(0);
        expect(instance.stats.propagationMs.count, instance.name).toBe(1);
        expect(instance.stats.flushes, instance.name).toEqual({ disconnect: 0, gap: 0, clear: 0, redis: 0 });
        expect(instance.stats.bypassing, instance.name).toBe(false);
      }
      expect(result.instances.map((instance) => instance.evictedAfterMs === undefined)).toEqual([
        true,
        false,
        false,
        false,
      ]);
      expect(result.database).toEqual({ reads: 2, writes: 1 });

      // A second update, from the other UserService instance: every instance of both services returns it
      // within a bounded wait, and each one that held the older version in L1 evicted it.
      const [first, second] = app.userServices;
      const newest = await second.service.updateUser(UPDATED_USER, { name: 'Augusta Ada King' });
      const instances = app.instances;
      await waitFor(
        async () =>
          (await Promise.all(instances.map(readUser))).every((user) => JSON.stringify(user) === JSON.stringify(newest)),
        5_000,
        () => `every instance to return ${newest.name}`,
      );
      expect(instances.map((instance) => instance.service.status().cache.invalidations.evicted)).toEqual([
        1, // user-service-1: held the first update
        1, // user-service-2: the writer, set() replaced its entry
        2,
        2,
      ]);
      expect(first.service.status().cache.invalidations.received).toBe(2);
      expect(await app.orderServices[0].service.getOrder('o-2')).toEqual({
        id: 'o-2',
        customerId: UNTOUCHED_USER,
        total: 17,
        customer: grace,
      });
      expect([...app.errors]).toEqual([]);
      for (const instance of instances) expect(instance.service.status().broker.status).toBe('up');
    });
  }

  it('the CLI runs the scenario on memory:// and prints the reads, the evictions and the stats', async () => {
    if (!existsSync(`${ROOT}${CLI}`))
      throw new Error(`${CLI} is missing: build first (npx tsc -b examples/user-cache)`);
    const ns = namespace();
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(
      (resolve) => {
        execFile(
          process.execPath,
          [CLI, '--url', 'memory://', '--namespace', ns],
          { cwd: ROOT, timeout: 15_000, env: { ...process.env, REDIS_URL, FERRY_URL: '' } },
          (error, out, err) => resolve({ stdout: out, stderr: err, code: error === null ? 0 : (error.code as number) }),
        );
      },
    );
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('(transport: memory)');
    expect(stdout).toContain(`Namespace "${ns}"`);
    expect(stdout).toMatch(/user-service-1 {3}getUser\(u-1\) {3}Ada Lovelace {3}from the database/);
    expect(stdout).toContain('2. user-service-1 updates u-1: "Ada Lovelace" → "Ada King"');
    expect(stdout).toMatch(/user-service-1 +received its own echo +at \+\d+\.\d\d ms, kept u-1/);
    for (const name of ['user-service-2', 'order-service-1', 'order-service-2']) {
      expect(stdout).toMatch(
        new RegExp(`${name} +received the invalidation +at \\+\\d+\\.\\d\\d ms, evicted u-1 from its L1`),
      );
    }
    // The summary rows: L1 hits, L1 misses, Redis hits, Redis misses, loads, sent, received, evicted.
    const row = (name: string): number[] => {
      const match = new RegExp(`^ +${name}((?: +\\d+){8}) +\\+\\d+\\.\\d\\d ms +\\d+/\\d+ ms$`, 'm').exec(stdout);
      expect(match, `the summary row of ${name} in:\n${stdout}`).not.toBeNull();
      return match![1]!.trim().split(/ +/).map(Number);
    };
    expect(row('user-service-1')).toEqual([3, 1, 0, 1, 1, 1, 1, 0]);
    expect(row('user-service-2')).toEqual([2, 2, 2, 0, 0, 0, 1, 1]);
    expect(row('order-service-1')).toEqual([3, 3, 2, 1, 1, 0, 1, 1]);
    expect(row('order-service-2')).toEqual([3, 3, 3, 0, 0, 0, 1, 1]);
    expect(stdout).toContain('After the update, all 8 reads of u-1 returned "Ada King".');
    expect(stdout).toContain('u-2, which nobody wrote, stayed cached: its 2 reads came from L1.');
    expect(stdout).toContain('The database was read 2 times and written 1 time.');
  });
});
