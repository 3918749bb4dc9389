import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { inspect, promisify } from 'node:util';
import amqp from 'amqplib';
import type { Client } from '@stomp/stompjs';
import {
  type Broker,
  ConnectionError,
  type ConnectOptions,
  ErrorCode,
  FerryError,
  HEADER_DEAD_LETTER_CODE,
  type Logger,
  type LogFields,
  type Message,
  PublishError,
  queue,
} from '@ferry/core';
import { deferred, FaultProxy, observeFor, rejection, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STOMP_CAPABILITIES } from '../src/index.js';
import {
  AMQP_URL,
  connectStomp,
  deleteQueues,
  isolatedBroker,
  rabbitmqctl,
  rawStomp,
  STOMP_HOST,
  STOMP_PORT,
  STOMP_URL,
} from './broker.js';

/**
 * Connection options of the STOMP transport against the real RabbitMQ: credentials kept out of errors and
 * logs, virtual hosts, TLS (`stomps://`) through a TLS-terminating proxy, heart-beating, TCP_NODELAY,
 * ERROR frames as typed errors, publishing during an outage, and message sizes.
 */

const WAIT_MS = 10_000;
const MiB = 1024 * 1024;

/** Cleanups registered by each test, run last-in first-out after it, whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];
const queues = new Set<string>();

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  if (queues.size === 0) return;
  await deleteQueues(queues);
  queues.clear();
});

/** A queue name for this test, deleted after it with its dead-letter queue. */
function queueName(prefix: string): string {
  const name = uniqueName(prefix);
  queues.add(name).add(`${name}.dlq`);
  return name;
}

async function open(options: ConnectOptions = {}, url?: string): Promise<Broker> {
  const broker = await connectStomp(options, url);
  cleanups.push(() => broker.close());
  return broker;
}

async function plainClient(): Promise<Client> {
  const client = await rawStomp();
  cleanups.push(() => client.deactivate());
  return client;
}

/**
 * A rabbitmqctl cleanup that outlives a moment when the shared node is briefly unavailable (a serial
 * test restarting it): tried again for up to 20 s.
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
  const user = uniqueName('ferry-stomp-user');
  await rabbitmqctl('add_user', user, password);
  cleanups.push(ctlCleanup('delete_user', user));
  await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
  return user;
}

/** Publishes to a fresh queue and waits for a subscription to get it: the broker works end to end. */
async function roundTrip(broker: Broker, data: unknown = { ok: uniqueName('rt') }): Promise<Message> {
  const name = queueName('options-rt');
  const messages: Message[] = [];
  const subscription = await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
  await broker.producer().publish(queue(name), { type: 'ping', data });
  await waitFor(() => messages.length === 1, WAIT_MS, `the round trip on ${name}`);
  await subscription.close();
  expect(messages[0]!.data).toEqual(data);
  return messages[0]!;
}

/** A pino-like logger that keeps every line. */
function capturingLogger(): { logger: Logger; lines: Array<{ level: string; fields: LogFields; message: string }> } {
  const lines: Array<{ level: string; fields: LogFields; message: string }> = [];
  const at =
    (level: string) =>
    (fields: LogFields, message: string): void =>
      void lines.push({ level, fields, message });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** Every way an error can end up in a log or a bug report, its cause chain included. */
function errorTexts(error: unknown): string[] {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const e = current as Error;
    texts.push(e.message, String(e), e.stack ?? '', JSON.stringify(e) ?? '', inspect(e, { depth: 10 }));
    current = e.cause;
  }
  return texts;
}

function expectNoSecret(texts: readonly string[], secret: string): void {
  for (const text of texts) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(encodeURIComponent(secret));
  }
}

/** What `connecting` rejects with; fails when it connects. */
async function connectFailure(connecting: Promise<Broker>): Promise<unknown> {
  try {
    const broker = await connecting;
    await broker.close();
  } catch (error) {
    return error;
  }
  throw new Error('expected connect() to reject, but it connected');
}

describe('stomp options: credentials never leak', () => {
  // Characters that must be percent-encoded in a URL, so the encoded and decoded forms both matter.
  const wrong = () => `Wr0ng:p@ss/${randomBytes(6).toString('hex')}%?`;

  it('a wrong passcode in the URL: ConnectionError naming the refusal, the passcode nowhere', async () => {
    const user = await createUser(`right-${randomBytes(8).toString('hex')}`);
    const passcode = wrong();
    const { logger, lines } = capturingLogger();
    const url = `stomp://${user}:${encodeURIComponent(passcode)}@${STOMP_HOST}:${STOMP_PORT}`;
    const error = await connectFailure(connectStomp({ logger }, url));
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe(ErrorCode.CONNECTION);
    expect((error as Error).message).toMatch(/Access refused for user/);
    expect((error as Error).message).toContain(user);
    expectNoSecret(errorTexts(error), passcode);
    expectNoSecret([JSON.stringify(lines), inspect(lines, { depth: 10 })], passcode);
  });

  it('a wrong passcode in stomp.login/passcode with a URL without credentials: the same', async () => {
    const user = await createUser(`right-${randomBytes(8).toString('hex')}`);
    const passcode = wrong();
    const { logger, lines } = capturingLogger();
    const error = await connectFailure(
      connectStomp({ logger, stomp: { login: user, passcode } }, `stomp://${STOMP_HOST}:${STOMP_PORT}`),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe(ErrorCode.CONNECTION);
    expect((error as Error).message).toMatch(/Access refused for user/);
    expect((error as Error).message).toContain(user);
    expectNoSecret(errorTexts(error), passcode);
    expectNoSecret([JSON.stringify(lines), inspect(lines, { depth: 10 })], passcode);
  });

  it.each([
    ['in the URL', true],
    ['in stomp.passcode', false],
  ])(
    'a passcode %s that RabbitMQ stops accepting while connected: reconnect failures are logged without it, and it reconnects once accepted again',
    async (_label, inUrl) => {
      const passcode = `Pa:ss@${randomBytes(8).toString('hex')}`;
      const user = await createUser(passcode);
      const proxy = await FaultProxy.start({ target: { host: STOMP_HOST, port: STOMP_PORT } });
      cleanups.push(() => proxy.close());
      const { logger, lines } = capturingLogger();
      const events: FerryError[] = [];
      const attempts: unknown[] = [];
      const broker = inUrl
        ? await open({ logger }, `stomp://${user}:${encodeURIComponent(passcode)}@${proxy.address}`)
        : await open({ logger, stomp: { login: user, passcode } }, `stomp://${proxy.address}`);
      broker.on('disconnected', (error) => events.push(error));
      broker.on('error', (error) => events.push(error));
      broker.on('reconnecting', (attempt, delayMs) => attempts.push({ attempt, delayMs }));
      await roundTrip(broker);

      await rabbitmqctl('change_password', user, `other-${randomBytes(8).toString('hex')}`);
      await proxy.cut();
      await waitFor(
        () => lines.some((l) => l.message === 'reconnect failed' && /Access refused/.test(JSON.stringify(l.fields))),
        WAIT_MS,
        () => `a logged reconnect failure naming the refusal (log: ${JSON.stringify(lines)})`,
      );
      expect(broker.health().status).toBe('reconnecting');
      const health = JSON.stringify(broker.health());

      await rabbitmqctl('change_password', user, passcode);
      await waitFor(() => broker.health().status === 'up', 15_000, 'the reconnect with the accepted passcode');
      await roundTrip(broker);

      expect(attempts.length).toBeGreaterThan(0);
      expect(events.length).toBeGreaterThan(0);
      expectNoSecret([JSON.stringify(lines), inspect(lines, { depth: 10 }), health], passcode);
      for (const event of events) expectNoSecret(errorTexts(event), passcode);
    },
  );
});

describe('stomp options: virtual hosts', () => {
  /** A vhost for this test only, guest allowed, deleted after it (which deletes its queues). */
  async function createVhost(): Promise<string> {
    const vhost = uniqueName('ferry-stomp-vhost');
    await rabbitmqctl('add_vhost', vhost);
    cleanups.push(ctlCleanup('delete_vhost', vhost));
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    return vhost;
  }

  async function queuesIn(vhost: string): Promise<string[]> {
    const out = await rabbitmqctl('list_queues', '-p', vhost, 'name', '--formatter', 'json', '--quiet');
    return (JSON.parse(out) as Array<{ name: string }>).map((q) => q.name);
  }

  it.each([
    ['?vhost= in the URL', (vhost: string) => [{}, `${STOMP_URL}?vhost=${encodeURIComponent(vhost)}`] as const],
    ['stomp.vhost', (vhost: string) => [{ stomp: { vhost } }, STOMP_URL] as const],
  ])('%s publishes and consumes in that vhost only', async (_label, make) => {
    const vhost = await createVhost();
    const [options, url] = make(vhost);
    const broker = await open(options, url);
    const name = uniqueName('vhost-q');
    const messages: Message[] = [];
    await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
    await broker.producer().publish(queue(name), { type: 'ping', data: { vhost } });
    await waitFor(() => messages.length === 1, WAIT_MS, 'the delivery in the vhost');
    expect(messages[0]!.data).toEqual({ vhost });
    expect(await queuesIn(vhost)).toContain(name);
    expect(await queuesIn('/')).not.toContain(name);
  });
});

const run = promisify(execFile);

/** A self-signed certificate for `localhost` (its own CA), made with openssl now. */
async function selfSigned(dir: string, label: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, `${label}.key`);
  const cert = join(dir, `${label}.crt`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    `/CN=localhost/O=ferry-${label}`,
    '-addext',
    'subjectAltName=DNS:localhost',
  ]);
  return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
}

describe('stomp options: TLS (stomps://) through a TLS-terminating proxy', () => {
  let dir = '';
  let server: TlsServer | undefined;
  let port = 0;
  let caPem = '';
  let otherCaPem = '';
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-stomp-tls-'));
    const [serverCert, other] = await Promise.all([selfSigned(dir, 'server'), selfSigned(dir, 'other')]);
    caPem = serverCert.cert;
    otherCaPem = other.cert;
    const tlsServer = createTlsServer({ key: serverCert.key, cert: serverCert.cert }, (client) => {
      const upstream = netConnect(STOMP_PORT, STOMP_HOST);
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    tlsServer.on('tlsClientError', () => undefined);
    server = tlsServer;
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    port = (tlsServer.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server!.close(() => resolve()));
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('stomps://localhost with stomp.tls.ca publishes and consumes', async () => {
    const broker = await open({ stomp: { tls: { ca: [caPem] } } }, `stomps://guest:guest@localhost:${port}`);
    await roundTrip(broker, { over: 'tls' });
  });

  it('a certificate from a different CA is a ConnectionError about the certificate', async () => {
    const error = await connectFailure(
      connectStomp({ stomp: { tls: { ca: [otherCaPem] } } }, `stomps://guest:guest@localhost:${port}`),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe(ErrorCode.CONNECTION);
    expect((error as Error).message).toMatch(/certificate/i);
    expectNoSecret(errorTexts(error), 'guest:guest');
  });
});

describe('stomp options: heart-beating', () => {
  it('detects a frozen connection within a few seconds with heartbeatMs 1000, and recovers after thaw', async () => {
    const proxy = await FaultProxy.start({ target: { host: STOMP_HOST, port: STOMP_PORT } });
    cleanups.push(() => proxy.close());
    const broker = await open(
      { stomp: { heartbeatMs: 1_000, connectTimeoutMs: 2_000 } },
      `stomp://guest:guest@${proxy.address}`,
    );
    const name = queueName('heartbeat');
    const messages: Message[] = [];
    await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
    let detectedAt: number | undefined;
    let reconnected = false;
    broker.on('disconnected', () => (detectedAt ??= performance.now()));
    broker.on('connected', () => (reconnected = true));

    const frozenAt = performance.now();
    proxy.freeze();
    await waitFor(() => detectedAt !== undefined, 8_000, 'the disconnected event after the freeze');
    const detectionMs = detectedAt! - frozenAt;
    expect(detectionMs).toBeLessThan(5_000);
    expect(broker.health().status).toBe('reconnecting');

    proxy.thaw();
    await waitFor(() => reconnected, 15_000, 'the connected event after the thaw');
    expect(broker.health().status).toBe('up');
    await broker.producer().publish(queue(name), { type: 'after.thaw', data: 1 });
    await waitFor(() => messages.length === 1, WAIT_MS, 'the delivery after the thaw');
    expect(messages[0]!.type).toBe('after.thaw');
  });
});

describe('stomp options: TCP_NODELAY', () => {
  it('the median publish → handler round trip of 50 is under 15 ms', async () => {
    const broker = await open();
    const name = queueName('nodelay');
    let arrived = deferred();
    await broker.consumer().subscribe(queue(name), () => arrived.resolve());
    const producer = broker.producer();
    await producer.publish(queue(name), { type: 'warm-up', data: 0 });
    await arrived.promise;
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      arrived = deferred();
      const started = performance.now();
      await producer.publish(queue(name), { type: 'rtt', data: i });
      await arrived.promise;
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const median = times[25]!;
    expect(median, `round trips (ms): ${times.map((t) => t.toFixed(1)).join(' ')}`).toBeLessThan(15);
  });
});

describe('stomp options: ERROR frames become typed errors', () => {
  /** A durable queue declared over AMQP with `x-max-length: 10`, as another service might own it. */
  async function ownedQueue(): Promise<string> {
    const name = queueName('error-owned');
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue(name, { durable: true, arguments: { 'x-max-length': 10 } });
    } finally {
      await connection.close();
    }
    return name;
  }

  function watch(broker: Broker): { errors: FerryError[]; disconnects: number } {
    const seen = { errors: [] as FerryError[], disconnects: 0 };
    broker.on('error', (error) => seen.errors.push(error));
    broker.on('disconnected', () => void seen.disconnects++);
    return seen;
  }

  it('subscribing with arguments that differ from the existing queue rejects with the broker’s PRECONDITION_FAILED, without a retry loop', async () => {
    // RabbitMQ answers this SUBSCRIBE with ERROR (precondition_failed) and then, oddly, a RECEIPT for it,
    // and closes the connection.
    const name = await ownedQueue();
    const broker = await open({ publishTimeout: 5_000 });
    const seen = watch(broker);
    const error = await rejection(broker.consumer().subscribe(queue(name), () => undefined));
    expect(error).toBeInstanceOf(FerryError);
    expect((error as Error).message).toMatch(/PRECONDITION_FAILED|inequivalent arg/);
    expect(seen.errors.some((e) => /inequivalent arg 'x-max-length'/.test(e.message))).toBe(true);
    // No reconnect → SUBSCRIBE → ERROR storm afterwards.
    const before = seen.errors.length;
    await observeFor(1_000);
    expect(seen.errors.length - before, 'broker errors after subscribe() settled').toBeLessThanOrEqual(1);
    await roundTrip(broker);
  });

  it('subscribing with an argument RabbitMQ cannot parse rejects with the broker’s message, well before publishTimeout', async () => {
    // RabbitMQ answers with ERROR "Processing error", sends no RECEIPT, and keeps the connection open.
    const name = queueName('error-nan');
    const broker = await open({ publishTimeout: 8_000 });
    const seen = watch(broker);
    const started = performance.now();
    const error = await rejection(
      broker
        .consumer()
        .subscribe(queue(name, { stomp: { headers: { 'x-max-length': 'notanumber' } } }), () => undefined),
    );
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(FerryError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect(seen.errors.some((e) => e instanceof FerryError && /Processing error/.test(e.message))).toBe(true);
    expect((error as Error).message).toMatch(/Processing error/);
    expect(elapsed).toBeLessThan(4_000);
    await roundTrip(broker);
  });

  it.each([
    ['arguments that differ from the existing queue', 'x-max-length', '20', /PRECONDITION_FAILED|inequivalent arg/],
    ['an argument RabbitMQ cannot parse', 'x-max-length', 'notanumber', /Processing error/],
  ])(
    'a publish RabbitMQ refuses (%s) rejects with PublishError FERRY_PUBLISH_REJECTED, and the broker recovers',
    async (label, header, value, pattern) => {
      const name = label.startsWith('arguments') ? await ownedQueue() : queueName('error-pub-nan');
      const broker = await open({ publishTimeout: 5_000 });
      const seen = watch(broker);
      const started = performance.now();
      const error = await rejection(
        broker
          .producer()
          .publish(queue(name, { stomp: { headers: { [header]: value } } }), { type: 'refused', data: 1 }),
      );
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(FerryError);
      expect(seen.errors.some((e) => pattern.test(e.message))).toBe(true);
      expect(error).toBeInstanceOf(PublishError);
      expect({ code: (error as PublishError).code, message: (error as Error).message }).toMatchObject({
        code: ErrorCode.PUBLISH_REJECTED,
        message: expect.stringMatching(pattern) as string,
      });
      expect(elapsed).toBeLessThan(4_000);
      await roundTrip(broker);
    },
  );
});

describe('stomp options: publishing while the broker is unreachable', () => {
  it('waits, then fails with PublishError FERRY_PUBLISH_TIMEOUT (never a TypeError); works again after reconnecting', async () => {
    const { broker, disconnect, reconnect } = await isolatedBroker({ publishTimeout: 1_500 });
    cleanups.push(() => broker.close());
    const name = queueName('outage');
    const messages: Message[] = [];
    await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
    const producer = broker.producer();

    // Publishes racing the cut: each either completes or times out, typed.
    const racing = Array.from({ length: 20 }, (_, i) => producer.publish(queue(name), { type: 'race', data: i }));
    await disconnect();
    const outcomes = await Promise.allSettled(racing);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(PublishError);
        expect((outcome.reason as PublishError).code).toBe(ErrorCode.PUBLISH_TIMEOUT);
      }
    }
    await waitFor(() => broker.health().status === 'reconnecting', WAIT_MS, 'health reconnecting');

    const started = performance.now();
    const error = await rejection(producer.publish(queue(name), { type: 'during', data: 'x' }));
    const waited = performance.now() - started;
    expect(error).toBeInstanceOf(PublishError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect((error as PublishError).code).toBe(ErrorCode.PUBLISH_TIMEOUT);
    expect((error as Error).message).not.toMatch(/no underlying STOMP connection/);
    expect(waited).toBeGreaterThanOrEqual(1_400);
    expect(waited).toBeLessThan(5_000);

    let reconnected = false;
    broker.on('connected', () => (reconnected = true));
    await reconnect();
    await waitFor(() => reconnected, 15_000, 'the connected event after reconnect()');
    await producer.publish(queue(name), { type: 'after', data: 'y' });
    await waitFor(() => messages.some((m) => m.type === 'after'), WAIT_MS, 'the delivery after reconnecting');
  });
});

describe('stomp options: message size', () => {
  it('RabbitMQ’s STOMP plugin takes 2, 4, 8 and 16 MiB frames from a plain client, byte for byte', async () => {
    const name = queueName('size-raw');
    const subscriber = await plainClient();
    const received: Buffer[] = [];
    const subscribed = uniqueName('sub');
    await new Promise<void>((resolve) => {
      subscriber.watchForReceipt(subscribed, () => resolve());
      subscriber.subscribe(`/queue/${name}`, (m) => void received.push(Buffer.from(m.binaryBody)), {
        ack: 'auto',
        receipt: subscribed,
      });
    });
    const publisher = await plainClient();
    const bodies = [2, 4, 8, 16].map((mib) => randomBytes(mib * MiB));
    for (const body of bodies) {
      const receipt = uniqueName('big');
      const done = new Promise<void>((resolve) => publisher.watchForReceipt(receipt, () => resolve()));
      publisher.publish({
        destination: `/queue/${name}`,
        headers: { receipt, persistent: 'true' },
        binaryBody: body,
      });
      await done;
    }
    await waitFor(() => received.length === bodies.length, 20_000, 'every large frame');
    bodies.forEach((body, i) => expect(received[i]!.equals(body), `body ${i}`).toBe(true));
  }, 40_000);

  it('Ferry caps maxMessageBytes at the declared 4 MiB: just under it round-trips, 8 MiB is refused before sending', async () => {
    expect(STOMP_CAPABILITIES.maxMessageBytes).toBe(4 * MiB);
    const broker = await open({ maxMessageBytes: 32 * MiB });
    expect(broker.capabilities.maxMessageBytes).toBe(4 * MiB);
    const name = queueName('size-ferry');
    const messages: Message[] = [];
    await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
    const fits = randomBytes(4 * MiB - 4_096);
    await broker.producer().publish(queue(name), { type: 'big', data: fits });
    await waitFor(() => messages.length === 1, 20_000, 'the 4 MiB delivery');
    expect(Buffer.from(messages[0]!.data as Uint8Array).equals(fits)).toBe(true);

    const error = await rejection(broker.producer().publish(queue(name), { type: 'huge', data: randomBytes(8 * MiB) }));
    expect(error).toBeInstanceOf(PublishError);
    expect((error as PublishError).code).toBe(ErrorCode.MESSAGE_TOO_LARGE);
  }, 40_000);

  it('a plain 6 MiB message goes to <q>.dlq with FERRY_MESSAGE_TOO_LARGE; the handler is not called', async () => {
    const name = queueName('size-dlq');
    const broker = await open();
    const messages: Message[] = [];
    await broker.consumer().subscribe(queue(name), (m) => void messages.push(m));
    const body = randomBytes(6 * MiB);
    const publisher = await plainClient();
    const receipt = uniqueName('big');
    const done = new Promise<void>((resolve) => publisher.watchForReceipt(receipt, () => resolve()));
    publisher.publish({ destination: `/queue/${name}`, headers: { receipt, persistent: 'true' }, binaryBody: body });
    await done;
    await broker.producer().publish(queue(name), { type: 'small', data: 'after' });
    await waitFor(() => messages.length === 1, 20_000, 'the small message after the large one');
    expect(messages.map((m) => m.type)).toEqual(['small']);

    const connection = await amqp.connect(AMQP_URL);
    cleanups.push(() => connection.close());
    const channel = await connection.createChannel();
    let dead: amqp.GetMessage | false = false;
    await waitFor(
      async () => (dead = await channel.get(`${name}.dlq`, { noAck: true })) !== false,
      WAIT_MS,
      'the dead letter',
    );
    const letter = dead as unknown as amqp.GetMessage;
    expect(letter.content.equals(body)).toBe(true);
    expect(letter.properties.headers?.[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.MESSAGE_TOO_LARGE);
  }, 40_000);
});
