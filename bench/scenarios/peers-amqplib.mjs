// The peers' baseline: amqplib 2.3 by hand, as an application would use it for reliable events. Two
// connections (TCP_NODELAY), as RabbitMQ advises for publishers and consumers, like the NestJS and
// Moleculer subjects: a confirm channel publishes, a channel on the other connection consumes. A durable
// queue, persistent messages, `prefetch` unacknowledged deliveries, manual ack after the handler ran.
// Payloads are JSON.stringify'd and JSON.parse'd per message. emit() resolves on the publisher confirm.
import amqplib from 'amqplib';

export async function amqplibPeer({ url, queue, prefetch }) {
  const connections = [];
  const state = { onEvent: () => undefined };
  try {
    connections.push(await amqplib.connect(url, { noDelay: true }));
    connections.push(await amqplib.connect(url, { noDelay: true }));
    const publisher = await connections[0].createConfirmChannel();
    const consumer = await connections[1].createChannel();
    await consumer.assertQueue(queue, { durable: true });
    await consumer.prefetch(prefetch);
    await consumer.consume(
      queue,
      (message) => {
        const data = JSON.parse(message.content.toString());
        state.onEvent(data);
        consumer.ack(message);
      },
      { noAck: false },
    );
    return {
      emit: (data) =>
        new Promise((resolve, reject) => {
          publisher.sendToQueue(queue, Buffer.from(JSON.stringify(data)), { persistent: true }, (error) =>
            error ? reject(error) : resolve(),
          );
        }),
      set onEvent(fn) {
        state.onEvent = fn;
      },
      async close() {
        for (const connection of connections) await connection.close();
      },
    };
  } catch (error) {
    for (const connection of connections) await connection.close().catch(() => undefined);
    throw error;
  }
}
