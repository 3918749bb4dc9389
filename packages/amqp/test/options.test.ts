import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import amqp from 'amqplib';
import {
  type Broker,
  ConfigurationError,
  ConnectionError,
  type ConnectOptions,
  ErrorCode,
  ExponentialBackoff,
  type Logger,
  type LogFields,
  type Message,
  PermanentError,
  queue,
  Redactor,
  silentLogger,
  topic,
} from '@ferry/core';
import { deferred, FaultProxy, rejection, uniqueName, waitFor } from '@ferry/conformance';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport } from '../src/index.js';
import { AMQP_URL, connectAmqp, RABBITMQ_HOST, RABBITMQ_PORT, rabbitmqctl } from './broker.js';

/**
 * Connection options of the AMQP transport against the real RabbitMQ: URL forms, credentials, vhosts,
 * secrets kept out of errors, logs and health(), connection names and heartbeats as RabbitMQ sees them,
 * TCP_NODELAY, and invalid options refused before any socket opens.
 */

const WAIT_MS = 10_000;
const HOST = `${RABBITMQ_HOST}:${RABBITMQ_PORT}`;

/** Cleanups registered by each test, run last-in first-out after it, whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];
const queues = new Set<string>();

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  if (queues.size === 0) return;
  const connection = await amqp.connect(AMQP_URL);
  try {
    for (const name of queues) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    queues.clear();
    await connection.close();
  }
});

async function open(options: ConnectOptions, url: string): Promise<Broker> {
  const broker = await connectAmqp(options, url);
  cleanups.push(() => broker.close());
  return broker;
}

/**
 * A rabbitmqctl cleanup that outlives a moment when the shared node is briefly unavailable (a serial
 * test restarting it): tried again for up to 20 s, then given up.
 */
function ctlCleanup(...args: string[]): () => Promise<void> {
  return () =>
    waitFor(
      () =>
        rabbitmqctl(...args).then(
          () => true,
          () => false,
        ),
      20_000,
      `rabbitmqctl ${args.join(' ')}`,
    );
}

/** A RabbitMQ user for this test only (permissions on `/`), deleted after it. */
async function createUser(password: string): Promise<string> {
  const user = uniqueName('ferry-user');
  await rabbitmqctl('add_user', user, password);
  cleanups.push(ctlCleanup('delete_user', user));
  await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
  return user;
}

/** Publishes to a fresh queue and waits for the subscription to get it: the broker works end to end. */
async function roundTrip(broker: Broker): Promise<Message> {
  const name = uniqueName('options-rt');
  queues.add(name).add(`${name}.dlq`);
  const messages: Message[] = [];
  const subscription = await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
  await broker.producer().publish(queue(name), { type: 'ping', data: { name } });
  await waitFor(() => messages.length === 1, WAIT_MS, `the round trip on ${name}`);
  await subscription.close();
  expect(messages[0]!.data).toEqual({ name });
  return messages[0]!;
}

interface ConnectionRow {
  readonly name: string;
  readonly user: string;
  readonly timeout: number;
  readonly connectionName: string | undefined;
  readonly product: string | undefined;
}

/** `rabbitmqctl list_connections`, with each connection's client-provided name. */
async function listConnections(): Promise<ConnectionRow[]> {
  const out = await rabbitmqctl(
    'list_connections',
    'name',
    'user',
    'timeout',
    'client_properties',
    '--formatter',
    'json',
    '--quiet',
  );
  const rows = JSON.parse(out) as Array<{
    name: string;
    user: string;
    timeout: number;
    client_properties: Array<[string, string, unknown]>;
  }>;
  return rows.map((row) => {
    const property = (key: string): string | undefined => {
      const value = row.client_properties.find(([k]) => k === key)?.[2];
      return typeof value === 'string' ? value : undefined;
    };
    return {
      name: row.name,
      user: row.user,
      timeout: row.timeout,
      connectionName: property('connection_name'),
      product: property('product'),
    };
  });
}

/** Waits until RabbitMQ lists the named connections (or none of them, with `present: false`). */
async function connectionsNamed(names: readonly string[], present = true): Promise<ConnectionRow[]> {
  let rows: ConnectionRow[] = [];
  await waitFor(
    async () => {
      rows = (await listConnections()).filter(
        (r) => r.connectionName !== undefined && names.includes(r.connectionName),
      );
      return present ? names.every((n) => rows.some((r) => r.connectionName === n)) : rows.length === 0;
    },
    15_000,
    () => `connections ${present ? '' : 'not '}listed: ${names.join(', ')} (seen: ${JSON.stringify(rows)})`,
  );
  return rows;
}

/** What `connecting` rejects with, or `undefined` when it connects. */
async function failure(connecting: Promise<Broker>): Promise<unknown> {
  try {
    await connecting;
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Every way an error can end up in a log or a bug report. */
function errorTexts(error: unknown): string[] {
  const e = error as Error;
  return [e.message, String(e), e.stack ?? '', JSON.stringify(e), inspect(e, { depth: 10 })];
}

function expectNoSecret(texts: readonly string[], secret: string): void {
  for (const text of texts) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(encodeURIComponent(secret));
  }
}

describe('amqp options: URL forms, credentials and vhosts', () => {
  it.each([
    ['credentials in the URL', AMQP_URL],
    ['the default vhost spelled %2F', `${AMQP_URL}/%2F`],
  ])('connects and works end to end with %s', async (_label, url) => {
    const broker = await open({}, url);
    await roundTrip(broker);
  });

  it('takes credentials from amqp.username/password when the URL has none', async () => {
    const password = `pw-${randomBytes(6).toString('hex')}`;
    const user = await createUser(password);
    const connectionName = uniqueName('ferry-test-creds');
    const broker = await open({ connectionName, amqp: { username: user, password } }, `amqp://${HOST}`);
    await roundTrip(broker);
    // Not amqplib's guest/guest default: RabbitMQ says who logged in.
    const rows = await connectionsNamed([`${connectionName} (publish)`, `${connectionName} (consume)`]);
    expect(rows.map((r) => r.user)).toEqual([user, user]);
    expect(broker.health().url).not.toContain(password);
  });

  it('handles reserved URL characters in a password, percent-encoded in the URL or raw in amqp.password', async () => {
    const password = `S@:/%?#-${randomBytes(4).toString('hex')}`;
    const user = await createUser(password);
    const fromUrl = await open({}, `amqp://${user}:${encodeURIComponent(password)}@${HOST}`);
    await roundTrip(fromUrl);
    const fromOptions = await open({ amqp: { username: user, password } }, `amqp://${HOST}`);
    await roundTrip(fromOptions);
    for (const broker of [fromUrl, fromOptions]) expectNoSecret([JSON.stringify(broker.health())], password);
  });

  it('handles a non-ASCII (UTF-8) password in amqp.password and percent-encoded in the URL', async () => {
    const password = `pässwörd-€-${randomBytes(4).toString('hex')}`;
    const user = await createUser(password);
    // options.ts puts amqp.password into the URL; amqplib reads URL credentials with unescape()
    // (Latin-1), so 'ä' (%C3%A4) reaches RabbitMQ as 'Ã¤' and the login is refused.
    expect
      .soft(await failure(open({ amqp: { username: user, password } }, `amqp://${HOST}`)), 'amqp.password refused')
      .toBeUndefined();
    expect
      .soft(await failure(open({}, `amqp://${user}:${encodeURIComponent(password)}@${HOST}`)), 'URL password refused')
      .toBeUndefined();
  });

  it('works end to end on a custom vhost, and the queue lives in that vhost', async () => {
    const vhost = uniqueName('ferry');
    await rabbitmqctl('add_vhost', vhost);
    cleanups.push(ctlCleanup('delete_vhost', vhost));
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    const broker = await open({}, `${AMQP_URL}/${vhost}`);
    const message = await roundTrip(broker);
    const queueName = message.destination.name;
    const inVhost = await rabbitmqctl('list_queues', '-p', vhost, 'name', '--formatter', 'json', '--quiet');
    expect((JSON.parse(inVhost) as Array<{ name: string }>).map((q) => q.name)).toContain(queueName);
    const inDefault = await rabbitmqctl('list_queues', '-p', '/', 'name', '--formatter', 'json', '--quiet');
    expect((JSON.parse(inDefault) as Array<{ name: string }>).map((q) => q.name)).not.toContain(queueName);
    queues.delete(queueName); // deleted with the vhost
    queues.delete(`${queueName}.dlq`);
  });
});

describe('amqp options: connection failures never reveal the password', () => {
  it('rejects a wrong password (URL or amqp.password) with a ConnectionError that never contains it', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const attempts = [
      () => connectAmqp({}, `amqp://guest:${wrong}@${HOST}`),
      () => connectAmqp({ amqp: { username: 'guest', password: wrong } }, `amqp://${HOST}`),
    ];
    for (const attempt of attempts) {
      const error = await rejection(attempt());
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).code).toBe(ErrorCode.CONNECTION);
      expect((error as Error).message).toMatch(/ACCESS.REFUSED|credentials/i);
      expectNoSecret(errorTexts(error), wrong);
    }
  });

  it('rejects an unreachable port within the connect timeout, without the password', async () => {
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const started = performance.now();
    const error = await rejection(
      connectAmqp({ amqp: { connectTimeoutMs: 2_000 } }, `amqp://guest:${secret}@127.0.0.1:1`),
    );
    expect(performance.now() - started).toBeLessThan(2_500);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe(ErrorCode.CONNECTION);
    expectNoSecret(errorTexts(error), secret);
  });

  it('gives up on a server that accepts TCP but never answers after connectTimeoutMs', async () => {
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const proxy = await FaultProxy.start({ target: { host: RABBITMQ_HOST, port: RABBITMQ_PORT } });
    cleanups.push(() => proxy.close());
    proxy.freeze(); // TCP handshakes complete, no AMQP byte ever comes back
    const started = performance.now();
    const error = await rejection(
      connectAmqp({ amqp: { connectTimeoutMs: 1_000 } }, `amqp://guest:${secret}@${proxy.address}`),
    );
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(4_000);
    expect(error).toBeInstanceOf(ConnectionError);
    expectNoSecret(errorTexts(error), secret);
  });
});

describe('amqp options: secrets never logged', () => {
  it.each(['in the URL', 'in amqp.password'])(
    'keeps a distinctive password given %s out of every log line, event, error and health()',
    async (where) => {
      const secret = `Zq9-${randomBytes(10).toString('hex')}`;
      const user = await createUser(secret);
      const proxy = await FaultProxy.start({ target: { host: RABBITMQ_HOST, port: RABBITMQ_PORT } });
      cleanups.push(() => proxy.close());

      const lines: string[] = [];
      const record =
        (level: string) =>
        (fields: LogFields, message: string): void => {
          lines.push(`${level} ${message} ${inspect(fields, { depth: 10 })}`);
        };
      const logger: Logger = {
        debug: record('debug'),
        info: record('info'),
        warn: record('warn'),
        error: record('error'),
      };
      const events: string[] = [];
      const inUrl = where === 'in the URL';
      const broker = await open(
        {
          logger,
          publishTimeout: 3_000,
          connectionName: uniqueName('ferry-test-secret'),
          ...(inUrl ? {} : { amqp: { username: user, password: secret } }),
        },
        inUrl ? `amqp://${user}:${secret}@${proxy.address}` : `amqp://${proxy.address}`,
      );
      for (const event of ['error', 'disconnected'] as const) {
        broker.on(event, (error) => void events.push(`${event} ${errorTexts(error).join(' ')}`));
      }
      broker.on('reconnecting', (attempt, delayMs) => void events.push(`reconnecting ${attempt} ${delayMs}`));
      broker.on('connected', () => void events.push('connected'));

      await roundTrip(broker);

      // A handler failure: the dead-letter path logs a warning with the reason.
      const poison = uniqueName('options-poison');
      queues.add(poison).add(`${poison}.dlq`);
      const failed = deferred();
      await broker.consumer().subscribe(queue(poison), () => {
        failed.resolve();
        throw new PermanentError('cannot handle this one');
      });
      await broker.producer().publish(queue(poison), { type: 'poison', data: 1 });
      await failed.promise;
      await waitFor(() => lines.some((l) => l.includes('dead-lettered')), WAIT_MS, 'the dead-letter log line');

      // An error path: a passive exchange that does not exist.
      const missing = uniqueName('missing-exchange');
      const refused = await rejection(
        broker
          .consumer()
          .subscribe(topic('user-updated', { amqp: { exchange: missing, passive: true } }), () => undefined),
      );

      // Connection loss and reconnect: the proxy cuts and refuses, then lets the broker back in.
      await proxy.refuse();
      await waitFor(() => broker.health().status === 'reconnecting', WAIT_MS, 'status reconnecting');
      await waitFor(
        () => events.filter((e) => e.startsWith('reconnecting')).length >= 2,
        WAIT_MS,
        'two reconnect attempts',
      );
      const during = broker.health();
      proxy.accept();
      await waitFor(() => broker.health().status === 'up', WAIT_MS, 'status up again');
      await roundTrip(broker);
      const after = broker.health();

      expect(lines.some((l) => l.startsWith('warn disconnected'))).toBe(true);
      expect(events.some((e) => e.startsWith('disconnected'))).toBe(true);
      expect(during.lastError).toBeDefined();
      expectNoSecret(lines, secret);
      expectNoSecret(events, secret);
      expectNoSecret(errorTexts(refused), secret);
      expectNoSecret([JSON.stringify(during), JSON.stringify(after), inspect(after, { depth: 10 })], secret);
      expect(after.url).toBe(inUrl ? `amqp://${user}:***@${proxy.address}` : `amqp://${proxy.address}`);
    },
  );
});

describe('amqp options: what RabbitMQ sees', () => {
  it('names both connections after connectionName: "<name> (publish)" and "<name> (consume)"', async () => {
    const connectionName = uniqueName('ferry-test');
    const names = [`${connectionName} (publish)`, `${connectionName} (consume)`];
    const broker = await open({ connectionName }, AMQP_URL);
    const rows = await connectionsNamed(names);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.product).toBe('Ferry');
    await broker.close();
    // close() closes both connections.
    await connectionsNamed(names, false);
  });

  it('negotiates the heartbeat: amqp.heartbeatSeconds, the default 10, and ?heartbeat= in the URL', async () => {
    const base = uniqueName('ferry-test-hb');
    await open({ connectionName: `${base}-five`, amqp: { heartbeatSeconds: 5 } }, AMQP_URL);
    await open({ connectionName: `${base}-default` }, AMQP_URL);
    await open({ connectionName: `${base}-url` }, `${AMQP_URL}?heartbeat=7`);
    const expected: Record<string, number> = { five: 5, default: 10, url: 7 };
    const names = Object.keys(expected).flatMap((k) => [`${base}-${k} (publish)`, `${base}-${k} (consume)`]);
    const rows = await connectionsNamed(names);
    for (const row of rows) {
      const kind = /-(five|default|url) \(/.exec(row.connectionName!)![1]!;
      expect(row.timeout, row.connectionName).toBe(expected[kind]);
    }
  });

  it('sets TCP_NODELAY: 50 sequential publish→handler round trips take a median well under Nagle’s ~40 ms', async () => {
    const name = uniqueName('options-latency');
    queues.add(name).add(`${name}.dlq`);
    const broker = await open({}, AMQP_URL);
    let arrived = deferred();
    await broker.consumer().subscribe(queue(name), () => arrived.resolve());
    const producer = broker.producer();
    const samples: number[] = [];
    for (let i = 0; i < 55; i++) {
      arrived = deferred();
      const started = performance.now();
      await producer.publish(queue(name), { type: 'rtt', data: i });
      await arrived.promise;
      if (i >= 5) samples.push(performance.now() - started); // the first few warm up
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)]!;
    expect(median, `median ${median.toFixed(2)} ms of ${samples.map((s) => s.toFixed(1)).join(', ')}`).toBeLessThan(15);
  });
});

describe('amqp options: invalid options are refused before connecting', () => {
  it.each([
    ['heartbeatSeconds: -1', { heartbeatSeconds: -1 }, /heartbeatSeconds/],
    ['heartbeatSeconds: 2.5', { heartbeatSeconds: 2.5 }, /heartbeatSeconds/],
    ['connectTimeoutMs: -5', { connectTimeoutMs: -5 }, /connectTimeoutMs/],
    ['connectTimeoutMs: "1000"', { connectTimeoutMs: '1000' as unknown as number }, /connectTimeoutMs/],
  ])(
    'connect() with amqp.%s rejects with a ConfigurationError and opens no socket',
    async (_label, amqpOptions, pattern) => {
      const proxy = await FaultProxy.start({ target: { host: RABBITMQ_HOST, port: RABBITMQ_PORT } });
      cleanups.push(() => proxy.close());
      const error = await rejection(connectAmqp({ amqp: amqpOptions }, `amqp://guest:guest@${proxy.address}`));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).code).toBe(ErrorCode.CONFIGURATION);
      expect((error as Error).message).toMatch(pattern);
      expect(proxy.stats().accepted + proxy.stats().refused).toBe(0);
    },
  );

  it.each(['mqtt', 'http', 'stomp'])(
    'createTransport() given a %s:// URL rejects with a ConfigurationError and opens no socket',
    async (scheme) => {
      const proxy = await FaultProxy.start({ target: { host: RABBITMQ_HOST, port: RABBITMQ_PORT } });
      cleanups.push(() => proxy.close());
      const url = `${scheme}://guest:guest@${proxy.address}`;
      const error = await rejection(
        createTransport({
          url: new URL(url),
          options: {},
          logger: silentLogger,
          redactor: new Redactor(url),
          reconnect: new ExponentialBackoff({}),
          maxMessageBytes: 1_024,
        }),
      );
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toContain('amqp://');
      expect(proxy.stats().accepted + proxy.stats().refused).toBe(0);
    },
  );
});
