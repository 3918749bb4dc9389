/**
 * The scenario: every instance reads, one UserService instance updates a user, every instance of both
 * services evicts its copy, every instance reads again. It returns what each read returned and where it
 * came from (L1, Redis or the database), each instance's `cache.stats()`, and the invalidation delays.
 */
import { performance } from 'node:perf_hooks';
import type { CacheStats } from '@ferry/invalidation';
import { type App, type AppOptions, type Instance, startApp } from './app.js';
import { SEED_USERS, type User } from './domain.js';
import { ExampleError, waitUntil } from './wait.js';

/** The user the scenario updates, its change, and the user nobody writes. */
export const UPDATED_USER = 'u-1';
export const UPDATE = { name: 'Ada King', email: 'ada.king@example.org' } as const;
export const UNTOUCHED_USER = 'u-2';
/** How long every instance may take to receive the invalidation, ms. */
export const DEFAULT_WAIT_TIMEOUT_MS = 10_000;

export type Source = 'L1' | 'Redis' | 'database';

export interface Read {
  readonly instance: string;
  /** `getUser(u-1)` or `getOrder(o-1)`. */
  readonly call: string;
  readonly userId: string;
  readonly user: User;
  readonly from: Source;
}

export interface InstanceReport {
  readonly name: string;
  readonly role: Instance['role'];
  /** `cache.stats()` after the scenario. */
  readonly stats: CacheStats;
  /** From the start of `updateUser()` to this instance's receipt of the invalidation, ms (this process's clock). */
  readonly receivedAfterMs: number | undefined;
  /** From the start of `updateUser()` to this instance evicting its copy, ms; undefined when it evicted nothing. */
  readonly evictedAfterMs: number | undefined;
}

export interface ScenarioResult {
  readonly transport: string;
  readonly brokerUrl: string;
  readonly redisAddress: string;
  readonly namespace: string;
  readonly update: {
    readonly by: string;
    readonly userId: string;
    readonly before: User;
    readonly after: User;
    /** How long `updateUser()` took: the database, then `cache.set()` (Redis, then the publish), ms. */
    readonly tookMs: number;
  };
  readonly before: readonly Read[];
  readonly after: readonly Read[];
  readonly instances: readonly InstanceReport[];
  readonly database: { readonly reads: number; readonly writes: number };
}

export interface ScenarioOptions {
  /** Narration, one line at a time. Default: none. */
  readonly log?: (line: string) => void;
  /** Bound of the wait for every instance to receive the invalidation, ms. */
  readonly waitTimeoutMs?: number;
}

/** Which tier answered a read, from the difference of the cache's counters across it. */
function sourceOf(before: CacheStats, after: CacheStats): Source {
  if (after.l1.hits > before.l1.hits) return 'L1';
  if (after.loads > before.loads) return 'database';
  if (after.l2.hits > before.l2.hits) return 'Redis';
  throw new ExampleError('a read was counted neither as an L1 hit, a Redis hit nor a load');
}

/** The reads of one phase: each UserService reads u-1 twice; each OrderService reads o-1 twice and o-2 once. */
async function readAll(app: App, log: (line: string) => void): Promise<Read[]> {
  const reads: Read[] = [];
  const record = async (instance: Instance, call: string, read: () => Promise<User | undefined>): Promise<void> => {
    const stats = instance.service.status().cache;
    const user = await read();
    if (user === undefined) throw new ExampleError(`${instance.name}: ${call} found nothing`);
    const entry: Read = {
      instance: instance.name,
      call,
      userId: user.id,
      user,
      from: sourceOf(stats, instance.service.status().cache),
    };
    reads.push(entry);
    log(`  ${instance.name.padEnd(16)} ${call.padEnd(14)} ${user.name.padEnd(14)} from ${sourceText(entry.from)}`);
  };
  for (const instance of app.userServices) {
    for (let i = 0; i < 2; i++) {
      await record(instance, `getUser(${UPDATED_USER})`, () => instance.service.getUser(UPDATED_USER));
    }
  }
  for (const instance of app.orderServices) {
    const customer = async (orderId: string): Promise<User | undefined> =>
      (await instance.service.getOrder(orderId))?.customer;
    await record(instance, 'getOrder(o-1)', () => customer('o-1'));
    await record(instance, 'getOrder(o-1)', () => customer('o-1'));
    await record(instance, 'getOrder(o-2)', () => customer('o-2'));
  }
  return reads;
}

function sourceText(source: Source): string {
  switch (source) {
    case 'L1':
      return 'L1 (this instance, no network call)';
    case 'Redis':
      return 'Redis (L1 missed)';
    case 'database':
      return 'the database (L1 and Redis missed)';
  }
}

const ms = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(2)} ms`);

/** Runs the scenario on started instances; leaves them open (the caller closes the app). */
export async function playScenario(app: App, options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const log = options.log ?? ((): void => undefined);
  const waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const [writer] = app.userServices;

  log('1. Reads before the update');
  const readsBefore = await readAll(app, log);
  const original = readsBefore.find((read) => read.userId === UPDATED_USER)!.user;

  log('');
  log(`2. ${writer.name} updates ${UPDATED_USER}: "${original.name}" → "${UPDATE.name}"`);
  const received = app.instances.map((instance) => instance.clock.received.length);
  const evicted = app.instances.map((instance) => instance.clock.evicted.length);
  const start = performance.now();
  const updated = await writer.service.updateUser(UPDATED_USER, UPDATE);
  const tookMs = performance.now() - start;
  log(`  updateUser() wrote the database, then cache.set() wrote Redis under a new version and published`);
  log(`  the invalidation (keys and versions, no values) on ferry.cache.${app.namespace}: done in ${ms(tookMs)}.`);
  // Every instance gets the invalidation, the writer included (its own echo); every other instance held
  // the user in L1 and must evict it. The writer's L1 already holds the new version: set() put it there.
  const others = app.instances.filter((instance) => instance !== writer);
  await waitUntil(
    () =>
      app.instances.every((instance, i) => instance.clock.received.length > received[i]!) &&
      others.every((instance) => instance.clock.evicted.length > evicted[app.instances.indexOf(instance)]!),
    waitTimeoutMs,
    () =>
      `every instance to receive the invalidation and the others to evict: ${app.instances
        .map((instance) => {
          const stats = instance.service.status().cache.invalidations;
          return `${instance.name} received ${stats.received}, evicted ${stats.evicted}`;
        })
        .join('; ')}`,
  );
  const delays = app.instances.map((instance, i) => ({
    receivedAfterMs: after(instance.clock.received[received[i]!], start),
    evictedAfterMs: after(instance.clock.evicted[evicted[i]!], start),
  }));
  log(`  Then, counted from the start of updateUser():`);
  for (const [i, instance] of app.instances.entries()) {
    const delay = delays[i]!;
    const what =
      delay.evictedAfterMs === undefined
        ? `kept ${UPDATED_USER}: set() had put the new version in its L1`
        : `evicted ${UPDATED_USER} from its L1 at +${ms(delay.evictedAfterMs)}`;
    const received = instance === writer ? 'its own echo' : 'the invalidation';
    log(`  ${instance.name.padEnd(16)} received ${received.padEnd(16)} at +${ms(delay.receivedAfterMs)}, ${what}`);
  }

  log('');
  log('3. Reads after the update');
  const readsAfter = await readAll(app, log);
  for (const read of readsAfter) {
    const expected = read.userId === UPDATED_USER ? updated : SEED_USERS.find((user) => user.id === read.userId);
    if (JSON.stringify(read.user) !== JSON.stringify(expected)) {
      throw new ExampleError(
        `${read.instance}: ${read.call} returned ${JSON.stringify(read.user)}, expected ${JSON.stringify(expected)}`,
      );
    }
  }
  return {
    transport: app.transport,
    brokerUrl: app.brokerUrl,
    redisAddress: app.redisAddress,
    namespace: app.namespace,
    update: { by: writer.name, userId: UPDATED_USER, before: original, after: updated, tookMs },
    before: readsBefore,
    after: readsAfter,
    instances: app.instances.map((instance, i) => ({
      name: instance.name,
      role: instance.role,
      stats: instance.service.status().cache,
      ...delays[i]!,
    })),
    database: { reads: app.database.reads, writes: app.database.writes },
  };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new ExampleError(String(error));
}

function after(at: number | undefined, start: number): number | undefined {
  return at === undefined ? undefined : at - start;
}

/** Starts the instances, plays the scenario, closes everything; returns the result. */
export async function runScenario(options: AppOptions & ScenarioOptions = {}): Promise<ScenarioResult> {
  const app = await startApp(options);
  let result: ScenarioResult | undefined;
  let failure: Error | undefined;
  try {
    options.log?.(header(app));
    result = await playScenario(app, options);
    if (app.errors.size > 0) {
      throw new ExampleError(`the brokers or Redis clients reported errors:\n  ${[...app.errors].join('\n  ')}`);
    }
  } catch (error) {
    failure = asError(error);
  }
  try {
    await app.close();
  } catch (error) {
    failure ??= asError(error);
  }
  if (failure !== undefined) throw failure;
  return result!;
}

function header(app: App): string {
  return [
    `Ferry user-cache example on ${app.brokerUrl} (transport: ${app.transport}), Redis ${app.redisAddress}`,
    `Namespace "${app.namespace}": Redis keys ferry:cache:${app.namespace}:*, invalidations on topic ferry.cache.${app.namespace}`,
    `Instances: ${app.instances.map((instance) => instance.name).join(', ')}; each has its own broker`,
    `connection, its own Redis client and its own in-memory L1 in front of the shared Redis.`,
    '',
  ].join('\n');
}

/** The summary table: each instance's `cache.stats()` and invalidation delays. */
export function formatSummary(result: ScenarioResult): string {
  const columns = [
    'instance',
    'L1 hits',
    'L1 misses',
    'Redis hits',
    'Redis misses',
    'loads',
    'sent',
    'received',
    'evicted',
    'received at',
    'propagation p50/max',
  ] as const;
  const rows = result.instances.map((instance) => {
    const s = instance.stats;
    return [
      instance.name,
      String(s.l1.hits),
      String(s.l1.misses),
      String(s.l2.hits),
      String(s.l2.misses),
      String(s.loads),
      String(s.invalidations.sent),
      String(s.invalidations.received),
      String(s.invalidations.evicted),
      `+${ms(instance.receivedAfterMs)}`,
      `${s.propagationMs.p50}/${s.propagationMs.max} ms`,
    ];
  });
  const widths = columns.map((column, i) => Math.max(column.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}`;
  const updated = result.after.filter((read) => read.userId === result.update.userId);
  const untouched = result.after.filter((read) => read.userId !== result.update.userId);
  const times = (n: number): string => `${n} time${n === 1 ? '' : 's'}`;
  return [
    'Summary (cache.stats() of each instance)',
    line(columns),
    ...rows.map(line),
    '',
    `  After the update, all ${updated.length} reads of ${result.update.userId} returned "${result.update.after.name}".`,
    `  ${untouched[0]?.userId ?? '-'}, which nobody wrote, stayed cached: its ${untouched.length} reads came from ${[...new Set(untouched.map((read) => read.from))].join(', ')}.`,
    `  The database was read ${times(result.database.reads)} and written ${times(result.database.writes)}.`,
    `  sent, received, evicted: invalidations. received at: from the start of updateUser(), this process's clock.`,
    `  propagation: stats().propagationMs, from the sender's Date.now() at publish to the receiver's at`,
    `  receipt, in whole milliseconds (across hosts, clock skew adds to it).`,
  ].join('\n');
}
