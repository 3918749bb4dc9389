/**
 * Plain clients of each protocol, no Ferry in them: what a service in another language would see of
 * what Ferry publishes.
 */
import { connect as tcpConnect } from 'node:net';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { waitFor } from '@ferry/conformance';
import { AMQP_URL } from './helpers.js';

export interface PlainMessage {
  readonly body: string;
  readonly contentType: string | undefined;
}

/** Subscribes a plain MQTT 5 client to `topicName`; `received` fills as messages arrive. */
export async function mqttSubscriber(topicName: string) {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port: 1883, protocolVersion: 5, reconnectPeriod: 0 });
  const received: PlainMessage[] = [];
  client.on('message', (_topic, payload, packet) =>
    received.push({ body: payload.toString('utf8'), contentType: packet.properties?.contentType }),
  );
  await client.subscribeAsync(topicName, { qos: 1 });
  return { received, close: () => client.endAsync() };
}

/** Takes one message off the RabbitMQ queue `name` with a plain AMQP 0-9-1 client (basic.get). */
export async function amqpGet(name: string): Promise<PlainMessage> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    let message: amqp.GetMessage | false = false;
    await waitFor(
      async () => (message = await channel.get(name, { noAck: true })) !== false,
      5_000,
      `a message in ${name}`,
    );
    const got = message as unknown as amqp.GetMessage;
    return { body: got.content.toString('utf8'), contentType: got.properties.contentType as string | undefined };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Reads one MESSAGE from `destination` with STOMP 1.2 frames written by hand on a TCP socket. */
export async function stompReceiveOne(destination: string): Promise<PlainMessage> {
  const socket = tcpConnect(61613, '127.0.0.1');
  let buffer = '';
  const frames: { command: string; headers: Map<string, string>; body: string }[] = [];
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\0')) >= 0) {
      const text = buffer.slice(0, end).replace(/^[\r\n]+/, ''); // leading EOLs are heart-beats
      buffer = buffer.slice(end + 1);
      const split = text.indexOf('\n\n');
      const [command = '', ...lines] = text.slice(0, split).split('\n');
      const headers = new Map(
        lines.map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
      );
      frames.push({ command, headers, body: text.slice(split + 2) });
    }
  });
  try {
    socket.write('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
    await waitFor(() => frames.some((f) => f.command === 'CONNECTED'), 5_000, 'STOMP CONNECTED');
    socket.write(`SUBSCRIBE\nid:0\ndestination:${destination}\nack:auto\n\n\0`);
    await waitFor(() => frames.some((f) => f.command === 'MESSAGE' || f.command === 'ERROR'), 5_000, 'a STOMP MESSAGE');
    const frame = frames.find((f) => f.command === 'MESSAGE' || f.command === 'ERROR')!;
    if (frame.command === 'ERROR') throw new Error(`STOMP ERROR: ${frame.headers.get('message')}`);
    return { body: frame.body, contentType: frame.headers.get('content-type') };
  } finally {
    socket.end('DISCONNECT\n\n\0');
  }
}
