import amqp from 'amqplib';
import { type FerryError, queue } from '@ferry/core';
import { uniqueName, waitFor } from '@ferry/conformance';
import { afterEach, describe, expect, it } from 'vitest';
import { AMQP_URL, connectStomp, deleteQueues } from './broker.js';

const created: string[] = [];
afterEach(async () => {
  await deleteQueues(created.splice(0));
});

describe('stomp: queue declarations and broker refusals', () => {
  it('a non-durable queue is shared by a publisher and a consumer on other connections', async () => {
    const q = queue(uniqueName('stomp-transient'), { durable: false });
    created.push(q.name);
    const consumer = await connectStomp();
    const publisher = await connectStomp();
    try {
      const got: string[] = [];
      await consumer.consumer().subscribe<string>(q, (m) => void got.push(m.data));
      await publisher.producer().publish(q, { type: 't', data: 'one' });
      await publisher.producer().publish(q, { type: 't', data: 'two' });
      await waitFor(() => got.length === 2, 10_000, 'both messages');
      expect(got.sort()).toEqual(['one', 'two']);
      expect(consumer.health().status).toBe('up');
      expect(publisher.health().status).toBe('up');
    } finally {
      await Promise.all([consumer.close(), publisher.close()]);
    }
  });

  it('a subscription RabbitMQ keeps refusing stops after three tries with an error event; publishing goes on', async () => {
    const name = uniqueName('stomp-mismatch');
    created.push(name);
    const connection = await amqp.connect(AMQP_URL);
    const channel = await connection.createChannel();
    await channel.assertQueue(name, { durable: true, arguments: { 'x-max-length': 5 } });
    await connection.close();
    const broker = await connectStomp();
    try {
      const errors: FerryError[] = [];
      broker.on('error', (error) => errors.push(error));
      const q = queue(name, { stomp: { headers: { 'x-max-length': '10' } } });
      await broker
        .consumer()
        .subscribe(q, () => undefined)
        .catch(() => undefined);
      await waitFor(() => errors.some((e) => /PRECONDITION|inequivalent/i.test(e.message)), 20_000, 'the refusal');
      await waitFor(
        () => broker.health().status === 'up',
        20_000,
        'the broker to stop waiting for the refused subscription',
      );
      const other = queue(uniqueName('stomp-other'));
      created.push(other.name);
      const got: number[] = [];
      await broker.consumer().subscribe<number>(other, (m) => void got.push(m.data));
      await broker.producer().publish(other, { type: 't', data: 1 });
      await waitFor(() => got.length === 1, 10_000, 'a message on another queue');
    } finally {
      await broker.close();
    }
  });

  it('a subscription whose queue is deleted under it declares it again and goes on receiving', async () => {
    const q = queue(uniqueName('stomp-deleted'));
    created.push(q.name);
    const broker = await connectStomp();
    const errors: FerryError[] = [];
    broker.on('error', (error) => errors.push(error));
    try {
      const got: string[] = [];
      await broker.consumer().subscribe<string>(q, (m) => void got.push(m.data));
      const connection = await amqp.connect(AMQP_URL);
      const channel = await connection.createChannel();
      await channel.deleteQueue(q.name);
      await connection.close();
      await waitFor(() => errors.some((e) => /cancel/i.test(e.message)), 10_000, 'the cancellation');
      // A new publisher declares the queue again on its first SEND.
      const publisher = await connectStomp();
      await waitFor(
        async () => {
          await publisher.producer().publish(q, { type: 't', data: 'after' });
          return got.includes('after');
        },
        20_000,
        'a message after the deletion',
      );
      await publisher.close();
    } finally {
      await broker.close();
    }
  });
});
