// NestJS 12 microservices over RabbitMQ (Transport.RMQ), set up for events the way its docs describe:
// a microservice whose controller has an @EventPattern handler, and a ClientProxy whose emit() sends
// events to the microservice's queue. Reliable settings: a durable queue, persistent messages
// (`persistent: true`), manual acknowledgement (`noAck: false`, the handler acks through the RmqContext
// as the docs show) and `prefetchCount` 100.
//
// What emit() waits for: ClientRMQ publishes through amqp-connection-manager, whose channel is a confirm
// channel by default, and the emit Observable completes when that publish is confirmed by RabbitMQ. So
// "confirmed" here is a publisher confirm, as for amqplib and Ferry.
//
// .mjs cannot hold decorators, so the controller and the module are built by calling the same decorator
// functions TypeScript would call. Nest needs reflect-metadata, imported here only.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, Ctx, EventPattern, Payload, Transport } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';

export const NEST_PATTERN = 'bench.event';

/**
 * Starts the microservice (consumer) and the client (producer) on two connections. Returns
 * { emit(data): Promise, onEvent (settable), close() }.
 */
export async function nestPeer({ url, queue, prefetch }) {
  const state = { onEvent: () => undefined };

  class BenchController {
    handle(data, context) {
      context.getChannelRef().ack(context.getMessage());
      state.onEvent(data);
    }
  }
  // What `@EventPattern(NEST_PATTERN) handle(@Payload() data, @Ctx() context)` compiles to.
  Payload()(BenchController.prototype, 'handle', 0);
  Ctx()(BenchController.prototype, 'handle', 1);
  EventPattern(NEST_PATTERN)(
    BenchController.prototype,
    'handle',
    Object.getOwnPropertyDescriptor(BenchController.prototype, 'handle'),
  );
  Controller()(BenchController);

  class BenchModule {}
  Module({ controllers: [BenchController] })(BenchModule);

  const socketOptions = { connectionOptions: { noDelay: true } };
  const app = await NestFactory.createMicroservice(BenchModule, {
    transport: Transport.RMQ,
    options: {
      urls: [url],
      queue,
      queueOptions: { durable: true },
      noAck: false,
      prefetchCount: prefetch,
      socketOptions,
    },
    logger: false,
  });
  await app.listen();

  const client = ClientProxyFactory.create({
    transport: Transport.RMQ,
    options: { urls: [url], queue, queueOptions: { durable: true }, persistent: true, socketOptions },
  });
  try {
    await client.connect();
  } catch (error) {
    await app.close();
    throw error;
  }

  return {
    emit: (data) => lastValueFrom(client.emit(NEST_PATTERN, data), { defaultValue: undefined }),
    set onEvent(fn) {
      state.onEvent = fn;
    },
    async close() {
      await client.close();
      await app.close();
    },
  };
}
