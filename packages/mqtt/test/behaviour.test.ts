import {
  type Broker,
  ConfigurationError,
  connect,
  ConnectionError,
  type Destination,
  ErrorCode,
  HEADER_DEAD_LETTER_CODE,
  type Message,
  queue,
  topic,
  UnsupportedError,
} from '@ferry/core';
import { deferred, FaultProxy, observeFor, rejection, uniqueName, waitFor } from '@ferry/conformance';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { publishTopic, topicFilter } from '../src/index.js';
import { resolveSettings } from '../src/options.js';
import {
  connectMqtt,
  isolatedBroker,
  MOSQUITTO_V4,
  MOSQUITTO_V5,
  RABBITMQ_V4,
  rawClient,
  removeSessions,
  TEST_RECONNECT,
  urlOf,
} from './broker.js';

/**
 * What MQTT users expect of the transport beyond the conformance suite, against the real Mosquitto and
 * RabbitMQ's MQTT plugin: the destination mapping and its refusals, honest capabilities per broker, the
 * PUBACK held until the handler settles, what a consumer that died can get back (eclipse-mosquitto#2662),
 * keep-alive under a long handler, and connection errors that say what to fix without leaking secrets.
 */

const WAIT_MS = 10_000;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(async () => {
  await removeSessions(MOSQUITTO_V5);
  await removeSessions(RABBITMQ_V4);
});

function track(broker: Broker): Broker {
  closers.push(() => broker.close());
  return broker;
}

describe('mqtt destinations', () => {
  it('maps queues to one-level `queue.<name>` topics and topic keys and patterns to levels', () => {
    expect(publishTopic(queue('orders.dlq'))).toBe('queue.orders.dlq');
    expect(publishTopic(topic('orders.created.eu'))).toBe('orders/created/eu');
    expect(topicFilter(topic('orders.*.eu'))).toBe('orders/+/eu');
    expect(topicFilter(topic('orders.#'))).toBe('orders/#');
  });

  it('refuses what MQTT reserves (+, #, NUL, a leading $) with a typed error, whatever built the destination', async () => {
    const forged = (name: string, kind: 'queue' | 'topic' = 'topic'): Destination =>
      kind === 'queue'
        ? { kind, name, options: {} }
        : { kind, name, options: {}, isPattern: name.includes('*') || name.includes('#') };
    for (const name of ['a.b+c', 'a.#x', 'a.b\u0000', '$SYS.x']) {
      expect(() => publishTopic(forged(name)), name).toThrow(ConfigurationError);
    }
    expect(() => publishTopic(forged('a+b', 'queue'))).toThrow(ConfigurationError);
    expect(() => publishTopic(forged('a/b', 'queue'))).toThrow(ConfigurationError);
    expect(() => publishTopic(topic('orders.*'))).toThrow(/pattern/);
    // Core refuses them before any transport sees them, too.
    expect(() => topic('orders.+')).toThrow(ConfigurationError);
    expect(() => queue('$orders')).toThrow(ConfigurationError);
    const broker = track(await connectMqtt(MOSQUITTO_V5));
    const error = await rejection(broker.producer().publish(forged('$SYS.hack'), { type: 't', data: 1 }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_DESTINATION });
  });
});

describe('mqtt capabilities, per broker and protocol, detected', () => {
  it('Mosquitto over MQTT 5 (CONNACK says shared subscriptions are available): competing consumers, groups and native headers', async () => {
    const broker = track(await connectMqtt(MOSQUITTO_V5));
    expect(broker.capabilities).toMatchObject({
      competingConsumers: true,
      groups: true,
      nativeHeaders: true,
      durableSubscriptions: true,
      durableQueues: false,
      failoverRedelivery: false,
    });
    expect(broker.health().details).toMatchObject({ protocolVersion: 5, sharedSubscriptions: true });
  });

  it('Mosquitto over MQTT 3.1.1: the probe finds shared subscriptions; the envelope is structured', async () => {
    const broker = track(await connectMqtt(MOSQUITTO_V4));
    expect(broker.capabilities).toMatchObject({ competingConsumers: true, groups: true, nativeHeaders: false });
  });

  it('RabbitMQ’s MQTT plugin: the probe finds no shared subscriptions; a group is refused with UnsupportedError, so is a second consumer of one queue', async () => {
    const broker = track(await connectMqtt(RABBITMQ_V4));
    expect(broker.capabilities).toMatchObject({ competingConsumers: false, groups: false, nativeHeaders: false });
    const group = await rejection(
      broker.consumer().subscribe(topic('ferry.caps.x'), () => undefined, { group: 'billing' }),
    );
    expect(group).toBeInstanceOf(UnsupportedError);
    const q = queue(uniqueName('ferry-caps'));
    await broker.consumer().subscribe(q, () => undefined);
    const second = await rejection(broker.consumer().subscribe(q, () => undefined));
    expect(second).toBeInstanceOf(UnsupportedError);
    expect((second as Error).message).toMatch(/shared subscriptions/);
  });

  it('the URL can state what the broker does instead of probing', async () => {
    const started = Date.now();
    const broker = track(
      await connect(`${urlOf(RABBITMQ_V4)}&sharedSubscriptions=false`, {
        reconnect: TEST_RECONNECT,
        mqtt: { instanceId: uniqueName('i').slice(0, 20) },
      }),
    );
    expect(broker.capabilities.groups).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('without a stable instance id, durable subscriptions are not claimed', async () => {
    const broker = track(await connect(urlOf(MOSQUITTO_V5), { reconnect: TEST_RECONNECT }));
    expect(broker.capabilities.durableSubscriptions).toBe(false);
    expect(broker.health().details).toMatchObject({ stableInstance: false });
  });
});

describe('mqtt acknowledgement after the handler', () => {
  it('a message whose handler has not settled when the connection drops comes back on the resumed session, flagged redelivered', async () => {
    const q = queue(uniqueName('ferry-ack'));
    const isolated = await isolatedBroker(MOSQUITTO_V5);
    track(isolated.broker);
    const held = deferred();
    const seen: Message[] = [];
    await isolated.broker.consumer().subscribe(q, async (m) => {
      seen.push(m);
      if (seen.length === 1) await held.promise;
    });
    const publisher = track(await connectMqtt(MOSQUITTO_V5));
    await publisher.producer().publish(q, { type: 't', data: 'once' });
    await waitFor(() => seen.length === 1, WAIT_MS, 'the handler to start');
    await isolated.disconnect();
    await waitFor(() => isolated.broker.health().status !== 'up', WAIT_MS, 'the consumer to notice');
    held.resolve(); // its PUBACK belongs to a dead session: never sent
    await isolated.reconnect();
    await waitFor(() => seen.length === 2, WAIT_MS, 'the redelivery on the resumed session');
    expect(seen[1]!.id).toBe(seen[0]!.id);
    expect(seen[1]!.redelivered).toBe(true);
    await observeFor(300);
    expect(seen).toHaveLength(2);
  });

  it('a handler far longer than the keep-alive does not take the connection down (mqtt.js reads on; only the PUBACK waits)', async () => {
    const broker = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { keepaliveSec: 1 } }));
    const states: string[] = [];
    broker.on('disconnected', () => states.push('disconnected'));
    const q = queue(uniqueName('ferry-long'));
    const done: string[] = [];
    await broker.consumer().subscribe(
      q,
      async (m) => {
        await new Promise((resolve) => setTimeout(resolve, 3_500));
        done.push(m.id);
      },
      { concurrency: 2 },
    );
    await broker.producer().publish(q, { type: 't', data: 1 });
    await broker.producer().publish(q, { type: 't', data: 2 });
    await waitFor(() => done.length === 2, WAIT_MS, 'both long handlers (run side by side on one connection)');
    expect(states).toEqual([]);
    expect(broker.health().status).toBe('up');
  }, 20_000);
});

describe('mqtt keep-alive', () => {
  it('a frozen line (no packets, no close) is noticed within 1.5 × keepaliveSec; after it thaws nothing published is lost', async () => {
    const proxy = await FaultProxy.start({ target: { host: MOSQUITTO_V5.host, port: MOSQUITTO_V5.port } });
    closers.push(() => proxy.close());
    const broker = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { keepaliveSec: 1 } }, proxy.address));
    const q = queue(uniqueName('ferry-frozen'));
    const got = new Set<string>();
    await broker.consumer().subscribe(q, (m) => void got.add(m.id));
    const publisher = track(await connectMqtt(MOSQUITTO_V5));
    const frozenAt = Date.now();
    proxy.freeze();
    await waitFor(() => broker.health().status !== 'up', 5_000, 'the frozen connection to be noticed');
    const noticedMs = Date.now() - frozenAt;
    expect(noticedMs).toBeLessThan(2_500);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = uniqueName('f');
      ids.push(id);
      await publisher.producer().publish(q, { id, type: 't', data: i });
    }
    proxy.thaw();
    await waitFor(() => ids.every((id) => got.has(id)), WAIT_MS, 'what was published while frozen');
    await waitFor(() => broker.health().status === 'up', WAIT_MS, 'the broker to be up again');
  });
});

describe('mqtt consumer crash and shared subscriptions (eclipse-mosquitto#2662)', () => {
  it('the unacknowledged message of a member that died stays in its session — another member does not get it — until a consumer with the same instance id comes back', async () => {
    const q = queue(uniqueName('ferry-2662'));
    const instance = uniqueName('crash').slice(0, 24);
    const crashed = await isolatedBroker(MOSQUITTO_V5, { mqtt: { instanceId: instance } });
    track(crashed.broker);
    const seenByCrashed: Message[] = [];
    const never = deferred();
    await crashed.broker.consumer().subscribe(q, async (m) => {
      seenByCrashed.push(m);
      await never.promise;
    });
    const other = track(await connectMqtt(MOSQUITTO_V5));
    const seenByOther: Message[] = [];
    await other.consumer().subscribe(q, (m) => void seenByOther.push(m));
    const publisher = track(await connectMqtt(MOSQUITTO_V5));
    // Round-robin: one of the two lands on the member that will die.
    await publisher.producer().publish(q, { type: 't', data: 'a' });
    await publisher.producer().publish(q, { type: 't', data: 'b' });
    await waitFor(() => seenByCrashed.length === 1 && seenByOther.length === 1, WAIT_MS, 'one message each');
    const lost = seenByCrashed[0]!;
    await crashed.disconnect(); // the process "dies": its connection is gone, the handler never settles
    await observeFor(1_000);
    expect(seenByOther.map((m) => m.id)).not.toContain(lost.id);
    // What Ferry can do: a consumer that comes back with the same instance id resumes that session.
    const back = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { instanceId: instance } }));
    const seenByBack: Message[] = [];
    await back.consumer().subscribe(q, (m) => void seenByBack.push(m));
    await waitFor(
      () => seenByBack.some((m) => m.id === lost.id),
      WAIT_MS,
      'the lost message for the returning instance',
    );
    expect(seenByBack.find((m) => m.id === lost.id)!.redelivered).toBe(true);
    never.resolve();
  });
});

describe('mqtt sessions: what a queue keeps while its consumers are away', () => {
  it('dead letters wait for a dead-letter consumer that subscribes later (the session it resumes was subscribed in advance)', async () => {
    const q = queue(uniqueName('ferry-dlq-later'));
    const broker = track(await connectMqtt(MOSQUITTO_V5));
    await broker.consumer().subscribe(
      q,
      () => {
        throw new Error('always fails');
      },
      { retry: { maxAttempts: 1 } },
    );
    // A plain subscriber on the dead-letter topic sees when the dead letter was published.
    const watcher = await rawClient(MOSQUITTO_V5);
    closers.push(() => watcher.endAsync());
    let published = false;
    watcher.on('message', () => (published = true));
    await watcher.subscribeAsync(publishTopic(queue(`${q.name}.dlq`)), { qos: 1 });
    await broker.producer().publish(q, { type: 't', data: 'doomed' });
    await waitFor(() => published, WAIT_MS, 'the dead letter to be published');
    const reader = track(await connectMqtt(MOSQUITTO_V5));
    const dead: Message[] = [];
    await reader.consumer().subscribe(queue(`${q.name}.dlq`), (m) => void dead.push(m));
    await waitFor(() => dead.length === 1, WAIT_MS, 'the dead letter for the later reader');
    expect(dead[0]!.data).toBe('doomed');
    expect(dead[0]!.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.HANDLER_FAILED);
  });

  it('members closed in any order leave the queue’s messages in one session, which the next consumer resumes', async () => {
    const q = queue(uniqueName('ferry-slots'));
    const first = track(await connectMqtt(MOSQUITTO_V5));
    const second = track(await connectMqtt(MOSQUITTO_V5));
    const seen: string[] = [];
    const a = await first.consumer().subscribe(q, (m) => void seen.push(m.id)); // slot 0
    const b = await second.consumer().subscribe(q, (m) => void seen.push(m.id)); // slot 1
    await a.close(); // not the last member: hands off and ends its session
    await b.close(); // the last member, in slot 1: subscribes slot 0's session, hands off to it
    await first.close();
    await second.close();
    const publisher = track(await connectMqtt(MOSQUITTO_V5));
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = uniqueName('m');
      ids.push(id);
      await publisher.producer().publish(q, { id, type: 't', data: i });
    }
    const back = track(await connectMqtt(MOSQUITTO_V5));
    const got = new Set<string>();
    await back.consumer().subscribe(q, (m) => void got.add(m.id), { concurrency: 4 });
    await waitFor(
      () => ids.every((id) => got.has(id)),
      WAIT_MS,
      () => `all 20 for the returning consumer (got ${got.size})`,
    );
  });
});

describe('mqtt scaling down for good (handOffOnClose)', () => {
  it('an instance closed with handOffOnClose leaves no share behind: the instance that stays gets everything published afterwards', async () => {
    const q = queue(uniqueName('ferry-retire'));
    const staying = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { instanceId: uniqueName('stay').slice(0, 30) } }));
    const leaving = track(
      await connectMqtt(MOSQUITTO_V5, {
        mqtt: { instanceId: uniqueName('leave').slice(0, 30), handOffOnClose: true },
      }),
    );
    const got = new Set<string>();
    await staying.consumer().subscribe(q, (m) => void got.add(m.id));
    await leaving.consumer().subscribe(q, (m) => void got.add(m.id));
    await leaving.close();
    const publisher = track(await connectMqtt(MOSQUITTO_V5));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = uniqueName('r');
      ids.push(id);
      await publisher.producer().publish(q, { id, type: 't', data: i });
    }
    await waitFor(
      () => ids.every((id) => got.has(id)),
      WAIT_MS,
      () => `all 10 on the staying instance (got ${got.size})`,
    );
  });
});

describe('mqtt 3.1.1 poison (structured mode: no content type to go by)', () => {
  it('a payload that claims to be a CloudEvents document but is broken or hostile is dead-lettered (FERRY_DECODE) with its bytes, the handler never called', async () => {
    const q = queue(uniqueName('ferry-poison-v4'));
    const broker = track(await connectMqtt(MOSQUITTO_V4));
    const handled: Message[] = [];
    const dead: Message[] = [];
    await broker.consumer().subscribe(queue(`${q.name}.dlq`), (m) => void dead.push(m), { decode: false });
    await broker.consumer().subscribe(q, (m) => void handled.push(m));
    const deep = `{"specversion":"1.0","id":"deep","type":"t","data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const payloads = [
      '{"specversion":"1.0","type":"no.id","data":1}',
      '{"specversion":"1.0","id":"cut","type":"t","data":{"a":',
      '{"specversion":"1.0","id":"proto","type":"t","data":{"__proto__":{"polluted":true}}}',
      deep,
    ];
    const client = await rawClient(MOSQUITTO_V4);
    closers.push(() => client.endAsync());
    for (const payload of payloads) await client.publishAsync(publishTopic(q), payload, { qos: 1 });
    await broker.producer().publish(q, { type: 'good', data: 'fine' });
    await waitFor(
      () => dead.length === 4 && handled.some((m) => m.type === 'good'),
      WAIT_MS,
      'the poison dead-lettered, the good one handled',
    );
    await observeFor(300);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const deadBodies = dead.map((m) => Buffer.from(m.data as Uint8Array).toString());
    for (const body of deadBodies) expect(payloads).toContain(body);
    for (const m of dead) expect(m.headers[HEADER_DEAD_LETTER_CODE]).toBe(ErrorCode.DECODE);
    expect(dead).toHaveLength(4);
    expect(handled.map((m) => m.type)).toEqual(['good']);
  });
});

describe('mqtt "no matching subscribers" (MQTT 5 reason code 0x10)', () => {
  it('a queue publish nobody can receive is sent again until a consumer subscribes, within unroutableGraceMs; past it, FERRY_UNROUTABLE — never a silent drop', async () => {
    const broker = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { unroutableGraceMs: 3_000 } }));
    expect(broker.capabilities.unroutableDetection).toBe(true);
    const q = queue(uniqueName('ferry-unrouted'));
    const publishing = broker.producer().publish(q, { type: 't', data: 'waits' });
    let settled = false;
    void publishing.finally(() => (settled = true));
    await observeFor(300);
    expect(settled, 'the publish waits for a subscriber').toBe(false);
    const got: Message[] = [];
    const consumerBroker = track(await connectMqtt(MOSQUITTO_V5));
    await consumerBroker.consumer().subscribe(q, (m) => void got.push(m));
    await publishing;
    await waitFor(() => got.length === 1, WAIT_MS, 'the message once a consumer subscribed');
    expect(got[0]!.data).toBe('waits');

    const quick = track(await connectMqtt(MOSQUITTO_V5, { mqtt: { unroutableGraceMs: 200 } }));
    const error = await rejection(quick.producer().publish(queue(uniqueName('ferry-nobody')), { type: 't', data: 1 }));
    expect(error).toMatchObject({ code: ErrorCode.UNROUTABLE });
    expect((error as Error).message).toMatch(/Start a consumer/);
  });
});

describe('mqtt 3.1.1 spoofed attempt counts (structured mode: the headers travel inside the document)', () => {
  it('a plain client’s document with a ferry-attempt that is not an integer in [1, maxAttempts] counts as attempt 1 and keeps its retries; an in-range 3 of 3 is dead-lettered after one call', async () => {
    const q = queue(uniqueName('ferry-spoof-v4'));
    const broker = track(await connectMqtt(MOSQUITTO_V4));
    const dead: Message[] = [];
    await broker.consumer().subscribe(queue(`${q.name}.dlq`), (m) => void dead.push(m));
    const calls = new Map<string, number[]>();
    await broker.consumer().subscribe(
      q,
      (m) => {
        const probe = m.headers['probe'] ?? '?';
        calls.set(probe, [...(calls.get(probe) ?? []), m.attempt]);
        if (probe === 'trusted' || calls.get(probe)!.length === 1) throw new Error(`fails ${probe}`);
      },
      { retry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 20 } },
    );
    const client = await rawClient(MOSQUITTO_V4);
    closers.push(() => client.endAsync());
    const spoofed = ['0', '-1', '4', '99999999999', '1.5', 'abc', ''];
    for (const [probe, value] of [...spoofed.map((v) => [`spoofed${spoofed.indexOf(v)}`, v]), ['trusted', '3']]) {
      const document = {
        specversion: '1.0',
        id: uniqueName(probe),
        type: 't',
        source: '/plain',
        probe,
        ferryheaders: { 'ferry-attempt': value },
        data: { probe },
      };
      await client.publishAsync(publishTopic(q), JSON.stringify(document), { qos: 1 });
    }
    await waitFor(
      () => dead.length === 1 && spoofed.every((_, i) => (calls.get(`spoofed${i}`)?.length ?? 0) >= 2),
      WAIT_MS,
      'every spoofed probe retried once and the in-range one dead-lettered',
    );
    await observeFor(200);
    for (let i = 0; i < spoofed.length; i++) expect(calls.get(`spoofed${i}`), spoofed[i]).toEqual([1, 2]);
    expect(calls.get('trusted')).toEqual([3]);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers['probe']).toBe('trusted');
  });
});

describe('mqtt connection errors', () => {
  it('an MQTT 5 CONNECT to RabbitMQ 3.10 (3.1.1 only) fails fast with a ConnectionError that says to use protocolVersion=4', async () => {
    const started = Date.now();
    const error = await rejection(
      connect(urlOf({ ...RABBITMQ_V4, protocolVersion: 5 }), { reconnect: TEST_RECONNECT }),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/protocolVersion=4/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a wrong password is a ConnectionError naming the cause, with no secret in it', async () => {
    const secret = 'not-the-password-42';
    const error = await rejection(connect(urlOf({ ...RABBITMQ_V4, password: secret }), { reconnect: TEST_RECONNECT }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/user name or password|not authorized/i);
    expect(JSON.stringify({ message: (error as Error).message, stack: (error as Error).stack })).not.toContain(secret);
  });

  it('a refused port is a ConnectionError after the attempt, not a silent retry loop', async () => {
    const error = await rejection(connect('mqtt://127.0.0.1:1', { reconnect: TEST_RECONNECT }));
    expect(error).toBeInstanceOf(ConnectionError);
  });

  it('checks options: protocol version, instance id, QoS', () => {
    expect(() => resolveSettings(new URL('mqtt://h?protocolVersion=3'))).toThrow(ConfigurationError);
    expect(() => resolveSettings(new URL('mqtt://h'), { instanceId: 'has space' })).toThrow(ConfigurationError);
    expect(() => resolveSettings(new URL('mqtt://h'), { qos: 3 as 0 })).toThrow(ConfigurationError);
    const settings = resolveSettings(new URL('mqtts://u:p%40ss@h'), {}, 'orders-1');
    expect(settings).toMatchObject({ tls: true, port: 8883, username: 'u', password: 'p@ss', instanceId: 'orders-1' });
    expect(settings.stableInstance).toBe(true);
  });
});

describe('mqtt latency', () => {
  it('sets TCP_NODELAY: 50 sequential publish → handler round trips have a median well under Nagle’s 40 ms', async () => {
    const broker = track(await connectMqtt(MOSQUITTO_V5));
    const q = queue(uniqueName('ferry-nodelay'));
    let arrived: (() => void) | undefined;
    await broker.consumer().subscribe(q, () => arrived?.());
    const producer = broker.producer();
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const started = performance.now();
      const got = new Promise<void>((resolve) => (arrived = resolve));
      await producer.publish(q, { type: 't', data: i });
      await got;
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    expect(times[25]).toBeLessThan(15);
  });
});
