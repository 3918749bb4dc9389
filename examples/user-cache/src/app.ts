/**
 * Starts the example's four instances in one process: UserService ×2 and OrderService ×2. Each is its own
 * inversify container, as each would be its own process in production: its own broker connection
 * (`ferryModule`), its own Redis client (`redisModule`) and its own `users` cache (`cacheModule`), whose
 * L1 lives in that instance only. The database stand-in is shared, as a real database would be.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Container } from 'inversify';
import type { Redis } from 'ioredis';
import { type Broker, Redactor } from '@ferry/core';
import { FERRY_BROKER, ferryModule } from '@ferry/core/inversify';
import type { CacheMetrics } from '@ferry/invalidation';
import { cacheModule, FERRY_REDIS, redisModule } from '@ferry/invalidation/inversify';
import { INSTANCE_NAME, ORDERS, SEED_ORDERS, SEED_USERS, USER_SOURCE, UserDatabase, USERS } from './domain.js';
import { OrderService } from './order-service.js';
import { UserService } from './user-service.js';
import { ExampleError, within } from './wait.js';

export const DEFAULT_URL = 'memory://';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_NAMESPACE = 'users';
/** Bound of each start-up step (connect, Redis PING) and of each instance's shutdown, ms. */
export const STEP_TIMEOUT_MS = 10_000;

export interface AppOptions {
  /** Broker URL. Default `FERRY_URL`, else `memory://`. */
  readonly url?: string | undefined;
  /** Redis URL. Default `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  readonly redisUrl?: string | undefined;
  /** The cache namespace. Default `users`; tests pass a unique one. */
  readonly namespace?: string | undefined;
}

/**
 * Records when this instance's cache received an invalidation and evicted an entry (the cache's
 * `metrics` hook), on this process's monotonic clock: the delays below are exact, unlike
 * `stats().propagationMs`, which compares the sender's and receiver's `Date.now()` (whole milliseconds).
 */
export class CacheClock implements CacheMetrics {
  readonly received: number[] = [];
  readonly evicted: number[] = [];

  increment(name: string): void {
    if (name === 'cache.invalidation.received') this.received.push(performance.now());
    else if (name === 'cache.invalidation.evicted') this.evicted.push(performance.now());
  }

  observe(): void {}
}

interface InstanceBase {
  readonly name: string;
  readonly container: Container;
  readonly broker: Broker;
  readonly redis: Redis;
  readonly clock: CacheClock;
}

export interface UserInstance extends InstanceBase {
  readonly role: 'user-service';
  readonly service: UserService;
}

export interface OrderInstance extends InstanceBase {
  readonly role: 'order-service';
  readonly service: OrderService;
}

export type Instance = UserInstance | OrderInstance;

export interface App {
  readonly url: string;
  /** The broker URL as the broker reports it (password redacted). */
  readonly brokerUrl: string;
  readonly transport: string;
  /** `host:port` of Redis (no credentials). */
  readonly redisAddress: string;
  readonly namespace: string;
  readonly database: UserDatabase;
  readonly userServices: readonly [UserInstance, UserInstance];
  readonly orderServices: readonly [OrderInstance, OrderInstance];
  readonly instances: readonly Instance[];
  /** Errors the brokers and Redis clients reported meanwhile (none expected). */
  readonly errors: ReadonlySet<string>;
  /** Closes every instance: its cache, then its broker connection and Redis client. */
  close(): Promise<void>;
}

const nonEmpty = (value: string | undefined): string | undefined => (value === '' ? undefined : value);

export function redisAddress(redisUrl: string): string {
  try {
    const url = new URL(redisUrl);
    return `${url.hostname}:${url.port === '' ? '6379' : url.port}`;
  } catch {
    throw new ExampleError(`REDIS_URL is not a URL: ${JSON.stringify(redisUrl)}`);
  }
}

/** Starts the four instances; on any failure closes what started and rejects. */
export async function startApp(options: AppOptions = {}): Promise<App> {
  const url = nonEmpty(options.url) ?? nonEmpty(process.env['FERRY_URL']) ?? DEFAULT_URL;
  const redisUrl = nonEmpty(options.redisUrl) ?? nonEmpty(process.env['REDIS_URL']) ?? DEFAULT_REDIS_URL;
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const address = redisAddress(redisUrl);
  const shownUrl = new Redactor(url).url(url); // no password in messages
  const database = new UserDatabase();
  const orders = new Map(SEED_ORDERS.map((order) => [order.id, order]));
  const errors = new Set<string>();
  // Connection names show up in the brokers' tools; on MQTT they are the instance id, which must be unique
  // among running processes, hence the per-run suffix.
  const run = randomBytes(3).toString('hex');

  const start = async (role: Instance['role'], index: number): Promise<Instance> => {
    const name = `${role}-${index}`;
    const clock = new CacheClock();
    const container = new Container();
    container.load(
      ferryModule({ url, options: { connectionName: `user-cache-${name}-${run}`, source: role } }),
      redisModule({ url: redisUrl }),
      cacheModule(USERS, { namespace, metrics: clock }),
    );
    container.bind(USER_SOURCE).toConstantValue(database);
    container.bind(INSTANCE_NAME).toConstantValue(name);
    if (role === 'user-service') {
      container.bind(UserService).toSelf().inSingletonScope();
    } else {
      container.bind(ORDERS).toConstantValue(orders);
      container.bind(OrderService).toSelf().inSingletonScope();
    }
    let redis: Redis | undefined;
    try {
      const broker = await within(
        container.getAsync(FERRY_BROKER),
        STEP_TIMEOUT_MS,
        `${name}: connecting to ${shownUrl} took longer than ${STEP_TIMEOUT_MS} ms`,
      );
      broker.on('error', (error) => errors.add(`${name} broker: ${error.code}: ${error.message}`));
      redis = await container.getAsync(FERRY_REDIS);
      redis.on('error', (error: Error) => errors.add(`${name} Redis: ${error.message}`));
      await ping(redis, address);
      const base = { name, container, broker, redis, clock };
      return role === 'user-service'
        ? { ...base, role, service: await container.getAsync(UserService) }
        : { ...base, role, service: await container.getAsync(OrderService) };
    } catch (error) {
      await closeFailed(container, name, redis).catch(() => undefined);
      throw error;
    }
  };

  await forgetSeededUsers({ url, shownUrl, redisUrl, namespace, address, run });
  const settled = await Promise.allSettled([
    start('user-service', 1),
    start('user-service', 2),
    start('order-service', 1),
    start('order-service', 2),
  ]);
  const started = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = settled.find((result) => result.status === 'rejected');
  const closeAll = async (): Promise<void> => {
    const results = await Promise.allSettled(
      started.map((instance) => closeContainer(instance.container, instance.name)),
    );
    const closeErrors = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    if (closeErrors.length > 0) throw new AggregateError(closeErrors, 'closing the instances failed');
  };
  if (failed !== undefined) {
    await closeAll().catch(() => undefined);
    throw failed.reason;
  }
  const [user1, user2, order1, order2] = started;
  if (user1?.role !== 'user-service' || user2?.role !== 'user-service')
    throw new ExampleError('instances out of order');
  if (order1?.role !== 'order-service' || order2?.role !== 'order-service') {
    throw new ExampleError('instances out of order');
  }
  const health = user1.broker.health();
  let closed: Promise<void> | undefined;
  return {
    url,
    brokerUrl: health.url,
    transport: health.transport,
    redisAddress: address,
    namespace,
    database,
    userServices: [user1, user2],
    orderServices: [order1, order2],
    instances: [user1, user2, order1, order2],
    errors,
    close: () => (closed ??= closeAll()),
  };
}

/**
 * Closes one instance: its cache first, while the broker can still take a pending invalidation, then the
 * rest of the container (broker connection, Redis client).
 */
async function closeContainer(container: Container, name: string): Promise<void> {
  await within(
    (async () => {
      if (container.isBound(USERS)) await container.unbindAsync(USERS);
      await container.unbindAllAsync();
    })(),
    STEP_TIMEOUT_MS,
    `${name}: closing took longer than ${STEP_TIMEOUT_MS} ms`,
  );
}

/** Waits for Redis to answer a PING, at most {@link STEP_TIMEOUT_MS}; the error says why it did not. */
async function ping(redis: Redis, address: string): Promise<void> {
  let last: string | undefined;
  const onError = (error: Error): void => {
    last = error.message;
  };
  redis.on('error', onError);
  try {
    await within(
      redis.ping(),
      STEP_TIMEOUT_MS,
      () =>
        `Redis at ${address} did not answer PING within ${STEP_TIMEOUT_MS} ms${last === undefined ? '' : ` (${last})`}`,
    );
  } finally {
    redis.off('error', onError);
  }
}

/**
 * Closes an instance whose start failed. When its Redis client never got ready, `redisModule`'s
 * deactivation would hang: ioredis's `quit()` waits for a connection that never comes while a command
 * (the PING) is queued. So that client is ended here, and only the cache and the broker are unbound.
 */
async function closeFailed(container: Container, name: string, redis: Redis | undefined): Promise<void> {
  if (redis === undefined || redis.status === 'ready') return closeContainer(container, name);
  redis.disconnect();
  await within(
    (async () => {
      if (container.isBound(USERS)) await container.unbindAsync(USERS);
      await container.unbindAsync(FERRY_BROKER);
    })(),
    STEP_TIMEOUT_MS,
    `${name}: closing took longer than ${STEP_TIMEOUT_MS} ms`,
  );
}

/**
 * The database stand-in starts from its seed on every run, so whatever an earlier run left in Redis under
 * the seed's ids is stale. Invalidate those ids before any instance reads, as a job restoring a database
 * would. It runs before the instances subscribe, so their counters show the scenario only.
 */
async function forgetSeededUsers(options: {
  readonly url: string;
  readonly shownUrl: string;
  readonly redisUrl: string;
  readonly namespace: string;
  readonly address: string;
  readonly run: string;
}): Promise<void> {
  const name = 'seed';
  const container = new Container();
  container.load(
    ferryModule({ url: options.url, options: { connectionName: `user-cache-seed-${options.run}`, source: 'seed' } }),
    redisModule({ url: options.redisUrl }),
    cacheModule(USERS, { namespace: options.namespace }),
  );
  let redis: Redis | undefined;
  try {
    await within(
      container.getAsync(FERRY_BROKER),
      STEP_TIMEOUT_MS,
      `connecting to ${options.shownUrl} took longer than ${STEP_TIMEOUT_MS} ms`,
    );
    redis = await container.getAsync(FERRY_REDIS);
    await ping(redis, options.address);
    const users = await container.getAsync(USERS);
    await within(
      users.invalidate(SEED_USERS.map((user) => user.id)),
      STEP_TIMEOUT_MS,
      `invalidating the seeded users took longer than ${STEP_TIMEOUT_MS} ms`,
    );
  } catch (error) {
    await closeFailed(container, name, redis).catch(() => undefined);
    throw error;
  }
  await closeContainer(container, name);
}
