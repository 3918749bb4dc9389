/**
 * Smoke test of the hello-world example on every transport, against the real brokers: the functions in
 * process, the commands as child processes, and plain clients of each protocol reading what it sends.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '@ferry/conformance';
import { GREETING, receive, send } from '../src/hello-world.js';
import { Command, deleteRabbitQueues, removeMqttSessions, script, TRANSPORTS, type TransportName } from './helpers.js';
import { amqpGet, mqttSubscriber, stompReceiveOne, type PlainMessage } from './plain-clients.js';

const onRabbit = (name: TransportName) => name === 'amqp' || name === 'stomp';

describe.each(TRANSPORTS)('hello-world on $name', ({ name, url: urlOf }) => {
  const queues: string[] = [];
  const queueName = () => {
    const q = uniqueName('hello');
    queues.push(q);
    return q;
  };

  afterAll(async () => {
    if (onRabbit(name)) await deleteRabbitQueues(queues);
    if (name === 'mqtt') await removeMqttSessions();
  });

  it('receive() gets what send() sends', async () => {
    const url = urlOf();
    const queue = queueName();
    const texts: string[] = [];
    const receiver = await receive(url, (text) => void texts.push(text), { queue });
    try {
      await send(url, GREETING, { queue });
      await waitFor(() => texts.length > 0, 10_000, 'the greeting');
    } finally {
      await receiver.close();
    }
    expect(texts).toEqual([GREETING]);
  });

  it('main.js sends and receives in one process', async () => {
    const main = new Command(script('main'), ['--url', urlOf(), '--queue', queueName()]);
    expect(await main.exit(), main.stderr).toBe(0);
    expect(main.lines).toContain(` [x] Received '${GREETING}'`);
  });

  it.skipIf(name === 'memory')('receive.js prints what send.js sends, as two processes', async () => {
    const queue = queueName();
    const receiver = new Command(script('receive'), ['--url', urlOf(), '--queue', queue, '--count', '1']);
    try {
      // Subscribed before anything is sent: on MQTT a queue keeps messages only once subscribed.
      await receiver.waitForLine('Waiting for messages');
      const sender = new Command(script('send'), ['--url', urlOf(), '--queue', queue]);
      expect(await sender.exit(), sender.stderr).toBe(0);
      expect(await receiver.exit(), receiver.stderr).toBe(0);
    } finally {
      receiver.child.kill();
    }
    expect(receiver.lines).toContain(` [x] Received '${GREETING}'`);
  });

  it.skipIf(name === 'memory')(`a plain ${name} client receives what send() sends`, async () => {
    const queue = queueName();
    let got: PlainMessage;
    if (name === 'mqtt') {
      // queue(q) is the MQTT topic `queue.q`; a plain subscription to it also receives (and counts as a subscriber).
      const subscriber = await mqttSubscriber(`queue.${queue}`);
      try {
        await send(urlOf(), GREETING, { queue });
        await waitFor(() => subscriber.received.length > 0, 5_000, `a message on queue.${queue}`);
      } finally {
        await subscriber.close();
      }
      got = subscriber.received[0]!;
    } else {
      // queue(q) is the RabbitMQ queue q, on AMQP and STOMP alike (STOMP destination /queue/q).
      await send(urlOf(), GREETING, { queue });
      got = name === 'amqp' ? await amqpGet(queue) : await stompReceiveOne(`/queue/${queue}`);
    }
    expect(got).toEqual({ body: GREETING, contentType: 'text/plain; charset=utf-8' });
  });
});
