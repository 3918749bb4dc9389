import { randomBytes } from 'node:crypto';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { type Broker, connect, type Message, queue, topic } from '@ferry/core';
import { uniqueName, waitFor } from '@ferry/conformance';
import '@ferry/amqp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CORRELATION_HEADER, publishTopic } from '../src/index.js';
import {
  connectMqtt,
  MOSQUITTO_V4,
  MOSQUITTO_V5,
  type MqttTarget,
  RABBITMQ_V4,
  rawClient,
  removeSessions,
  TEST_RECONNECT,
} from './broker.js';

/**
 * Interoperability of the MQTT transport on the real brokers: plain MQTT clients both ways (MQTT 5
 * user properties, MQTT 3.1.1 structured JSON), header values MQTT cannot carry as they are, QoS 0/1/2
 * publishes, and Ferry over AMQP ↔ Ferry over MQTT through RabbitMQ's `amq.topic`.
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WAIT_MS = 10_000;
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(async () => {
  await removeSessions(MOSQUITTO_V5);
  await removeSessions(RABBITMQ_V4);
});

async function ferry(target: MqttTarget): Promise<Broker> {
  const broker = await connectMqtt(target);
  closers.push(() => broker.close());
  return broker;
}

async function plain(target: MqttTarget): Promise<MqttClient> {
  const client = await rawClient(target);
  closers.push(() => client.endAsync());
  return client;
}

/** Subscribes a plain client and collects what it receives (payload and MQTT 5 properties). */
async function plainSubscriber(client: MqttClient, filter: string): Promise<IPublishPacket[]> {
  const received: IPublishPacket[] = [];
  client.on('message', (_topic, _payload, packet) => received.push(packet));
  await client.subscribeAsync(filter, { qos: 1 });
  return received;
}

function key(label: string): string {
  return `ferry.interop.${label}.${randomBytes(4).toString('hex')}`;
}

describe('mqtt interop: plain MQTT clients', () => {
  it('a plain MQTT 5 client’s string, JSON and bytes, without Ferry metadata, reach the handler with a synthesized envelope', async () => {
    const broker = await ferry(MOSQUITTO_V5);
    const q = queue(uniqueName('ferry-interop-plain'));
    const got: Message[] = [];
    await broker.consumer().subscribe(q, (m) => void got.push(m));
    const client = await plain(MOSQUITTO_V5);
    await client.publishAsync(publishTopic(q), 'just text', { qos: 1 });
    await client.publishAsync(publishTopic(q), '{"n":1}', { qos: 1, properties: { contentType: 'application/json' } });
    await client.publishAsync(publishTopic(q), Buffer.from([0, 255, 7]), { qos: 1 });
    await waitFor(() => got.length === 3, WAIT_MS, 'the three plain messages');
    const [text, json, bytes] = got;
    expect(text!.data).toEqual(Buffer.from('just text'));
    expect(text!.id).toMatch(UUID);
    expect(text!.type).toBe('unknown');
    expect(text!.source).toBe(`mqtt://127.0.0.1:1883/${publishTopic(q)}`);
    expect(json!.data).toEqual({ n: 1 });
    expect(json!.datacontenttype).toBe('application/json');
    expect(bytes!.data).toEqual(Buffer.from([0, 255, 7]));
  });

  it('what Ferry publishes over MQTT 5 is readable by a plain subscriber: the data as payload, attributes and headers as user properties, datacontenttype as Content Type', async () => {
    const broker = await ferry(MOSQUITTO_V5);
    const t = key('to-plain');
    const client = await plain(MOSQUITTO_V5);
    const received = await plainSubscriber(client, t.split('.').join('/'));
    const id = uniqueName('id');
    await broker.producer().publish(topic(t), {
      id,
      type: 'order.placed',
      data: { order: 7 },
      subject: 'o-7',
      headers: { tenant: 'acme', [CORRELATION_HEADER]: 'req-42' },
    });
    await waitFor(() => received.length === 1, WAIT_MS, 'the plain subscriber to get the message');
    const packet = received[0]!;
    expect(JSON.parse(packet.payload.toString())).toEqual({ order: 7 });
    expect(packet.properties?.contentType).toBe('application/json');
    expect(packet.properties?.correlationData?.toString()).toBe('req-42');
    const user = packet.properties?.userProperties ?? {};
    expect(user).toMatchObject({ id, type: 'order.placed', subject: 'o-7', specversion: '1.0', tenant: 'acme' });
    expect(user['time']).toMatch(RFC3339);
    expect(user).not.toHaveProperty('datacontenttype');
  });

  it('MQTT 3.1.1 (no headers) carries the envelope as a structured CloudEvents JSON payload; contentMode binary sends the bare data, as plain subscribers expect', async () => {
    const broker = await ferry(MOSQUITTO_V4);
    const base = key('v311');
    const client = await plain(MOSQUITTO_V4);
    const received = await plainSubscriber(client, `${base.split('.').join('/')}/#`);
    await broker.producer().publish(topic(`${base}.structured`), { type: 't.s', data: 'hello', headers: { h: 'v' } });
    await broker.producer().publish(topic(`${base}.plain`, { contentMode: 'binary' }), { type: 't.p', data: 'hello' });
    await waitFor(() => received.length === 2, WAIT_MS, 'both messages');
    const structured = received.find((p) => p.topic.endsWith('/structured'))!;
    const document = JSON.parse(structured.payload.toString()) as Record<string, unknown>;
    expect(document).toMatchObject({ specversion: '1.0', type: 't.s', data: 'hello', h: 'v' });
    const bare = received.find((p) => p.topic.endsWith('/plain'))!;
    expect(bare.payload.toString()).toBe('hello');
  });

  it('a Ferry MQTT 3.1.1 consumer reads both its own structured messages and a plain client’s payload', async () => {
    const broker = await ferry(MOSQUITTO_V4);
    const t = key('v311-in');
    const got: Message[] = [];
    await broker.consumer().subscribe(topic(t), (m) => void got.push(m));
    await broker.producer().publish(topic(t), { type: 'from.ferry', data: { a: 1 }, headers: { h: 'v' } });
    const client = await plain(MOSQUITTO_V4);
    await client.publishAsync(t.split('.').join('/'), 'from a plain client', { qos: 1 });
    await waitFor(() => got.length === 2, WAIT_MS, 'both messages');
    const fromFerry = got.find((m) => m.type === 'from.ferry')!;
    expect(fromFerry.data).toEqual({ a: 1 });
    expect(fromFerry.headers).toEqual({ h: 'v' });
    const fromPlain = got.find((m) => m.type === 'unknown')!;
    expect(fromPlain.data).toEqual(Buffer.from('from a plain client'));
  });

  it('header values with control characters (MQTT forbids them in strings) travel percent-encoded and arrive as sent', async () => {
    const broker = await ferry(MOSQUITTO_V5);
    const t = key('control');
    const got: Message[] = [];
    await broker.consumer().subscribe(topic(t), (m) => void got.push(m));
    const client = await plain(MOSQUITTO_V5);
    const received = await plainSubscriber(client, t.split('.').join('/'));
    const headers = { 'x-newline': 'a\nb', 'x-tab': 'a\tb', 'x-c1': 'a\u0085b', 'x-plain': 'a%0Ab' };
    await broker.producer().publish(topic(t), { type: 't', data: 1, subject: 'line1\nline2', headers });
    await waitFor(() => got.length === 1 && received.length === 1, WAIT_MS, 'the message on both subscribers');
    expect(got[0]!.headers).toEqual(headers);
    expect(got[0]!.subject).toBe('line1\nline2');
    const user = received[0]!.properties?.userProperties ?? {};
    expect(user['x-newline']).toBe('a%0Ab');
    expect(user['x-plain']).toBe('a%0Ab');
    expect(JSON.parse(user['ferry-encoded'] as string)).toEqual(expect.arrayContaining(['x-newline', 'subject']));
  });

  it('publishes at QoS 0, 1 and 2 (per destination) all reach a Ferry consumer, which always acknowledges at QoS 1', async () => {
    const broker = await ferry(MOSQUITTO_V5);
    const base = key('qos');
    const got: Message[] = [];
    await broker.consumer().subscribe(topic(`${base}.*`), (m) => void got.push(m));
    for (const qos of [0, 1, 2] as const) {
      await broker.producer().publish(topic(`${base}.q${qos}`, { mqtt: { qos } }), { type: 't', data: qos });
    }
    await waitFor(() => got.length === 3, WAIT_MS, 'one message per QoS');
    expect(got.map((m) => m.data).sort()).toEqual([0, 1, 2]);
  });

  it('a retained publish reaches a subscriber that comes later', async () => {
    const broker = await ferry(MOSQUITTO_V5);
    const t = key('retain');
    await broker.producer().publish(topic(t, { mqtt: { retain: true } }), { type: 't', data: 'kept' });
    const got: Message[] = [];
    await broker.consumer().subscribe(topic(t), (m) => void got.push(m));
    await waitFor(() => got.length === 1, WAIT_MS, 'the retained message');
    expect(got[0]!.data).toBe('kept');
    const client = await plain(MOSQUITTO_V5);
    await client.publishAsync(t.split('.').join('/'), '', { qos: 1, retain: true }); // clears it
  });
});

describe('mqtt interop: across protocols on RabbitMQ (AMQP ↔ MQTT 3.1.1 through amq.topic)', () => {
  async function amqp(): Promise<Broker> {
    const broker = await connect(AMQP_URL, { reconnect: TEST_RECONNECT, source: '/amqp-service' });
    closers.push(() => broker.close());
    return broker;
  }

  it('Ferry over AMQP → Ferry over RabbitMQ’s MQTT plugin: id, type, time, source, subject and headers intact (structured mode)', async () => {
    const mqttBroker = await ferry(RABBITMQ_V4);
    const amqpBroker = await amqp();
    const t = key('amqp-to-mqtt');
    const got: Message[] = [];
    await mqttBroker.consumer().subscribe(topic(t), (m) => void got.push(m));
    const id = uniqueName('x');
    await amqpBroker.producer().publish(topic(t, { contentMode: 'structured' }), {
      id,
      type: 'user.updated',
      subject: 'u-1',
      data: { name: 'Ada' },
      headers: { tenant: 'acme', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    await waitFor(() => got.length === 1, WAIT_MS, 'the AMQP message on the MQTT side');
    const m = got[0]!;
    expect(m).toMatchObject({ id, type: 'user.updated', source: '/amqp-service', subject: 'u-1' });
    expect(m.time).toMatch(RFC3339);
    expect(m.data).toEqual({ name: 'Ada' });
    expect(m.headers).toMatchObject({ tenant: 'acme' });
    expect(m.destination.name).toBe(t);
  });

  it('Ferry over RabbitMQ’s MQTT plugin → Ferry over AMQP: the envelope arrives intact', async () => {
    const mqttBroker = await connectMqtt(RABBITMQ_V4, { source: '/mqtt-service' });
    closers.push(() => mqttBroker.close());
    const amqpBroker = await amqp();
    const t = key('mqtt-to-amqp');
    const got: Message[] = [];
    await amqpBroker.consumer().subscribe(topic(t), (m) => void got.push(m));
    const id = uniqueName('y');
    await mqttBroker.producer().publish(topic(t), {
      id,
      type: 'order.placed',
      data: [1, 2, 3],
      headers: { tenant: 'acme' },
    });
    await waitFor(() => got.length === 1, WAIT_MS, 'the MQTT message on the AMQP side');
    expect(got[0]).toMatchObject({ id, type: 'order.placed', source: '/mqtt-service', data: [1, 2, 3] });
    expect(got[0]!.time).toMatch(RFC3339);
    expect(got[0]!.headers).toEqual({ tenant: 'acme' });
  });

  it('without structured mode only the payload crosses (documented): the AMQP side synthesizes an envelope', async () => {
    const mqttBroker = await ferry(RABBITMQ_V4);
    const amqpBroker = await amqp();
    const t = key('mqtt-plain');
    const got: Message[] = [];
    await amqpBroker.consumer().subscribe(topic(t), (m) => void got.push(m));
    await mqttBroker.producer().publish(topic(t, { contentMode: 'binary' }), { type: 'lost.type', data: 'bare' });
    await waitFor(() => got.length === 1, WAIT_MS, 'the bare payload on the AMQP side');
    expect(got[0]!.type).not.toBe('lost.type');
  });
});
