import { randomBytes } from 'node:crypto';
import { type Broker, type ConnectOptions, ConnectionError, connect, type Logger, queue } from '@ferry/core';
import { makeCertificates, type TestCertificates, uniqueName, waitFor } from '@ferry/conformance';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_RECONNECT } from './broker.js';
import { PrivateMosquitto, type PrivateMosquittoOptions } from './private-mosquitto.js';

/** An instance id of its own per connection: every test has a fresh broker anyway. */
function instanceId(): string {
  return `tls-${randomBytes(4).toString('hex')}`;
}

/** Private Mosquitto processes and Ferry brokers of the running test, closed after it (brokers first). */
const mosquittos: PrivateMosquitto[] = [];
const brokers: Broker[] = [];

async function startMosquitto(options: PrivateMosquittoOptions): Promise<PrivateMosquitto> {
  const mosquitto = await PrivateMosquitto.start(options);
  mosquittos.push(mosquitto);
  return mosquitto;
}

async function connectFerry(url: string, options: ConnectOptions = {}): Promise<Broker> {
  const broker = await connect(url, {
    reconnect: TEST_RECONNECT,
    ...options,
    mqtt: { instanceId: instanceId(), sessionExpirySec: 900, ...options.mqtt },
  });
  brokers.push(broker);
  return broker;
}

afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((broker) => broker.close()));
  await Promise.allSettled(mosquittos.splice(0).map((mosquitto) => mosquitto.close()));
});

/** The error a promise rejects with, and how long it took; throws when it resolves. */
async function failure(promise: Promise<Broker>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    brokers.push(await promise);
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected connect() to fail, but it connected');
}

/** Subscribes to a new queue, publishes one message to it and waits for it: the connection works end to end. */
async function roundTrip(broker: Broker, data: string): Promise<void> {
  const got: string[] = [];
  const q = queue(uniqueName('ferry-mqtt-tls'));
  // An MQTT queue keeps messages only once its session subscribed: subscribe first.
  const subscription = await broker.consumer().subscribe<string>(q, (m) => void got.push(m.data));
  try {
    await broker.producer().publish(q, { type: 'tls.test', data });
    await waitFor(() => got.length === 1, 10_000, `the message "${data}"`);
    expect(got).toEqual([data]);
  } finally {
    await subscription.close();
  }
}

/** Everything an error carries that could show a secret: name, message, stack, code, own fields, the cause chain. */
function describeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 5) return String(error);
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    string: String(error),
    json: JSON.stringify(error),
    code: (error as { code?: unknown }).code,
    cause: error.cause === undefined ? undefined : describeError(error.cause, depth + 1),
  };
}

/** Everything a broker emits (every event, with its arguments), and every line it logs. */
class Recorder {
  readonly events: { event: string; args: unknown[] }[] = [];
  readonly lines: string[] = [];
  readonly logger: Logger = {
    debug: (fields, message) => this.#log('debug', fields, message),
    info: (fields, message) => this.#log('info', fields, message),
    warn: (fields, message) => this.#log('warn', fields, message),
    error: (fields, message) => this.#log('error', fields, message),
  };

  #log(level: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    this.lines.push(
      JSON.stringify({ level, message, fields }, (_key, value: unknown) =>
        value instanceof Error ? describeError(value) : value,
      ),
    );
  }

  watch(broker: Broker): void {
    for (const event of ['connected', 'disconnected', 'reconnecting', 'error', 'blocked', 'unblocked']) {
      broker.on(
        event,
        (...args: unknown[]) => void this.events.push({ event, args: args.map((a) => describeError(a)) }),
      );
    }
  }

  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }

  /** All of it as one text, to search for secrets. */
  text(broker?: Broker): string {
    return JSON.stringify({
      events: this.events,
      lines: this.lines,
      ...(broker === undefined ? {} : { health: broker.health() }),
    });
  }
}

/** The forms a password could show in: as is, and percent-encoded (as in a URL). */
function forms(password: string): string[] {
  return [password, encodeURIComponent(password), new URL(`mqtt://u:${encodeURIComponent(password)}@h`).password];
}

function expectNoSecret(text: string, ...passwords: string[]): void {
  for (const password of passwords) {
    for (const form of forms(password)) expect(text).not.toContain(form);
  }
}

describe('mqtt over TLS (mqtts://) on a private Mosquitto with a CA made for the test', () => {
  let certs: TestCertificates;
  beforeAll(async () => {
    certs = await makeCertificates();
  }, 60_000);

  it('connects with the CA in mqtt.tls, publishes to a queue and receives it', async () => {
    const mosquitto = await startMosquitto({ tls: certs });
    const broker = await connectFerry(`mqtts://127.0.0.1:${mosquitto.port}`, {
      mqtt: { tls: { ca: certs.ca, servername: 'localhost' } },
    });
    expect(broker.health()).toMatchObject({ status: 'up', url: `mqtts://127.0.0.1:${mosquitto.port}` });
    expect(broker.capabilities.nativeHeaders).toBe(true); // MQTT 5 by default, over TLS too
    await roundTrip(broker, 'over TLS');
  });

  it('mqtts:// with a user name and password (a broker that wants both): connects, round-trips, and a plain mqtt.js client gets in with the same settings', async () => {
    const password = `tls@pass:${randomBytes(4).toString('hex')}`;
    const mosquitto = await startMosquitto({ tls: certs, users: { 'tls-user': password } });
    const broker = await connectFerry(`mqtts://tls-user:${encodeURIComponent(password)}@127.0.0.1:${mosquitto.port}`, {
      mqtt: { tls: { ca: certs.ca, servername: 'localhost' } },
    });
    await roundTrip(broker, 'over TLS, with a password');
    expect(broker.health().url).toBe(`mqtts://tls-user:***@127.0.0.1:${mosquitto.port}`);
    // The helper's own client (target + tlsClientOptions) reads $SYS over TLS with the password: nothing left queued.
    await waitFor(async () => (await mosquitto.storedMessages()) === 0, 10_000, 'no message left in the broker');
  });

  it('the TLS listener speaks only TLS: a plain mqtt:// connect fails with a ConnectionError', async () => {
    const mosquitto = await startMosquitto({ tls: certs });
    const { error } = await failure(
      connectFerry(`mqtt://127.0.0.1:${mosquitto.port}`, { mqtt: { connectTimeoutMs: 5_000 } }),
    );
    expect(error).toBeInstanceOf(ConnectionError);
  });

  it('refuses a server whose certificate another CA signed: a typed ConnectionError from connect(), at once, naming the certificate', async () => {
    const mosquitto = await startMosquitto({ tls: certs });
    const { error, ms } = await failure(
      connectFerry(`mqtts://127.0.0.1:${mosquitto.port}`, {
        mqtt: { tls: { ca: certs.otherCa, servername: 'localhost' } },
      }),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/certificate/i);
    // One handshake, refused: not the connect timeout (10 s by default), not a retry loop.
    expect(ms).toBeLessThan(3_000);
  });
});

describe('mqtt user name and password on a private Mosquitto (allow_anonymous false, password_file)', () => {
  const USER = 'ferry-user';
  /** `@` and `:` must be percent-encoded in a URL: the transport has to decode them. */
  const PASSWORD = `p@ss:w0rd-${randomBytes(4).toString('hex')}`;
  const WRONG = `wr0ng@pass:${randomBytes(4).toString('hex')}`;
  const urlOf = (port: number, password: string): string =>
    `mqtt://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}?protocolVersion=5`;

  it('connects with the credentials in the URL (a percent-encoded password with @ and :), publishes and receives; neither health() nor events nor logs show the password', async () => {
    const mosquitto = await startMosquitto({ users: { [USER]: PASSWORD } });
    const recorder = new Recorder();
    const broker = await connectFerry(urlOf(mosquitto.port, PASSWORD), { logger: recorder.logger });
    recorder.watch(broker);
    await roundTrip(broker, 'with a password');
    const health = broker.health();
    expect(health.status).toBe('up');
    expect(health.url).toBe(`mqtt://${USER}:***@127.0.0.1:${mosquitto.port}?protocolVersion=5`);
    expectNoSecret(recorder.text(broker), PASSWORD);
  });

  it('the same broker refuses anonymous clients (it really checks credentials)', async () => {
    const mosquitto = await startMosquitto({ users: { [USER]: PASSWORD } });
    const { error } = await failure(connectFerry(`mqtt://127.0.0.1:${mosquitto.port}?protocolVersion=5`));
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/bad user name or password|not authorized/i);
  });

  it.each([5, 4] as const)(
    'a wrong password (MQTT %s) fails with a ConnectionError saying so, quickly, and the error carries no password',
    async (protocolVersion) => {
      const mosquitto = await startMosquitto({ users: { [USER]: PASSWORD } });
      const url = urlOf(mosquitto.port, WRONG).replace('protocolVersion=5', `protocolVersion=${protocolVersion}`);
      const { error, ms } = await failure(connectFerry(url));
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toMatch(/bad user name or password|not authorized/i);
      expect(ms).toBeLessThan(3_000); // the CONNACK's refusal ends it: no retry loop
      expectNoSecret(JSON.stringify(describeError(error)), WRONG, PASSWORD);
    },
  );

  it('a forced disconnect (Mosquitto stopped gracefully, started again on the same port): no event, log line nor health() carries the password', async () => {
    const mosquitto = await startMosquitto({ users: { [USER]: PASSWORD } });
    const recorder = new Recorder();
    const broker = await connectFerry(urlOf(mosquitto.port, PASSWORD), { logger: recorder.logger });
    recorder.watch(broker);
    // A consumer too, so its connection goes down and comes back as well.
    const got: string[] = [];
    const q = queue(uniqueName('ferry-mqtt-auth'));
    await broker.consumer().subscribe<string>(q, (m) => void got.push(m.data));

    await mosquitto.stop();
    await waitFor(() => recorder.count('disconnected') > 0, 10_000, 'the disconnected event');
    await waitFor(
      () => recorder.lines.some((line) => line.includes('reconnect failed')),
      10_000,
      'a reconnect attempt refused by the stopped broker',
    );
    expect(broker.health().status).toBe('reconnecting');
    expectNoSecret(recorder.text(broker), PASSWORD); // while down, with health().lastError set

    await mosquitto.start();
    await waitFor(
      () => recorder.count('connected') > 0,
      15_000,
      () => `the connected event: ${recorder.text()}`,
    );
    await broker.producer().publish(q, { type: 'tls.test', data: 'after the restart' });
    await waitFor(() => got.includes('after the restart'), 10_000, 'the message after the restart');

    const disconnected = recorder.events.find((e) => e.event === 'disconnected');
    expect(disconnected?.args[0]).toMatchObject({ name: 'ConnectionError' });
    expectNoSecret(recorder.text(broker), PASSWORD);
  });

  it('a password changed while the broker was down: reconnects are refused (bad credentials) and keep going, logged without the password', async () => {
    const mosquitto = await startMosquitto({ users: { [USER]: PASSWORD } });
    const recorder = new Recorder();
    const broker = await connectFerry(urlOf(mosquitto.port, PASSWORD), { logger: recorder.logger });
    recorder.watch(broker);

    await mosquitto.stop();
    await mosquitto.setUsers({ [USER]: WRONG }); // the broker now wants another password than Ferry's
    await mosquitto.start();
    await waitFor(
      () => recorder.lines.filter((line) => /bad user name or password|not authorized/i.test(line)).length >= 2,
      15_000,
      () => `two refused reconnects in the log: ${recorder.lines.join('\n')}`,
    );
    expect(recorder.count('connected')).toBe(0);
    expect(broker.health().status).toBe('reconnecting');
    // An operator sees why: each refused reconnect is an `error` event naming the cause.
    const refusals = recorder.events.filter(
      (e) => e.event === 'error' && /bad user name or password|not authorized/i.test((e.args[0] as Error).message),
    );
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expectNoSecret(recorder.text(broker), PASSWORD, WRONG);

    // The password back: the next attempt gets in.
    await mosquitto.stop();
    await mosquitto.setUsers({ [USER]: PASSWORD });
    await mosquitto.start();
    await waitFor(() => recorder.count('connected') > 0, 15_000, 'the connected event');
    await roundTrip(broker, 'after the password came back');
    expectNoSecret(recorder.text(broker), PASSWORD, WRONG);
  });
});
