import { createHash } from 'node:crypto';
import type { Channel, ChannelModel, Options } from 'amqplib';
import {
  ConfigurationError,
  ConnectionError,
  deadLetterQueueName,
  delayBucket,
  type Destination,
  ErrorCode,
  type FerryError,
  type Queue,
  type Topic,
} from '@ferry/core';
import type { AmqpHints } from './options.js';

/** The exchange topics use unless a hint names another: the one STOMP `/topic/` and MQTT share on RabbitMQ. */
export const DEFAULT_TOPIC_EXCHANGE = 'amq.topic';

/** One queue to declare (or check) and its bindings. */
export interface QueuePlan {
  readonly name: string;
  /** Check it exists instead of declaring it. */
  readonly passive: boolean;
  readonly options: Options.AssertQueue;
  readonly bindings: ReadonlyArray<{ exchange: string; pattern: string; args?: Record<string, unknown> }>;
  /** An exchange to declare (or check) before binding. */
  readonly exchange?: ExchangePlan;
}

/** One exchange to declare or check. */
export interface ExchangePlan {
  readonly name: string;
  readonly type: string;
  readonly passive: boolean;
}

function hints(destination: Destination): AmqpHints {
  return destination.options.amqp ?? {};
}

/** Queue arguments from the hints: queue type, length limit, overflow, TTL and pass-through arguments. */
export function queueArguments(h: AmqpHints): Record<string, unknown> {
  return {
    ...(h.queueType === undefined || h.queueType === 'classic' ? {} : { 'x-queue-type': h.queueType }),
    ...(h.maxLength === undefined ? {} : { 'x-max-length': h.maxLength }),
    ...(h.overflow === undefined ? {} : { 'x-overflow': h.overflow }),
    ...(h.messageTtlMs === undefined ? {} : { 'x-message-ttl': h.messageTtlMs }),
    ...h.arguments,
  };
}

/** The exchange a topic publishes to and binds from. */
export function topicExchange(t: Topic): ExchangePlan {
  const h = hints(t);
  if (h.exchange === undefined || h.exchange === DEFAULT_TOPIC_EXCHANGE) {
    return { name: DEFAULT_TOPIC_EXCHANGE, type: 'topic', passive: true };
  }
  return { name: h.exchange, type: h.exchangeType ?? 'topic', passive: h.passive === true };
}

/** Where a publish goes: a queue through the default exchange, a topic through its exchange with its key. */
export function publishTarget(destination: Destination): { exchange: string; routingKey: string } {
  if (destination.kind === 'queue') return { exchange: '', routingKey: destination.name };
  return { exchange: topicExchange(destination).name, routingKey: destination.name };
}

/** The durable queue behind `queue(name)`. Declared by producers too, so that messages wait for consumers. */
export function queuePlan(q: Queue): QueuePlan {
  const h = hints(q);
  return {
    name: q.name,
    passive: h.passive === true,
    options: { durable: q.options.durable !== false, arguments: queueArguments(h) },
    bindings: [],
  };
}

/**
 * The queue a subscription consumes: the queue itself; for a topic group a durable queue named like its
 * dead-letter queue without `.dlq` (`orders.created.billing`), shared by the group's members; for a
 * private subscription an exclusive auto-delete queue that lives as long as the connection.
 */
export function subscriptionPlan(source: Destination, group: string | undefined, id: string): QueuePlan {
  if (source.kind === 'queue') return queuePlan(source);
  const exchange = topicExchange(source);
  const h = hints(source);
  const bindings = [
    {
      exchange: exchange.name,
      pattern: exchange.type === 'fanout' || exchange.type === 'headers' ? '' : source.name,
      ...(h.bindingArguments === undefined ? {} : { args: { ...h.bindingArguments } }),
    },
  ];
  if (group === undefined) {
    const base = deadLetterQueueName(source).replace(/\.dlq$/, '');
    return {
      name: `${base}.private-${id}`,
      passive: false,
      options: { durable: false, exclusive: true, autoDelete: true, arguments: {} },
      bindings,
      exchange,
    };
  }
  return {
    name: deadLetterQueueName(source, group).replace(/\.dlq$/, ''),
    passive: false,
    options: { durable: true, arguments: queueArguments({ ...h, passive: false }) },
    bindings,
    exchange,
  };
}

/** The retry delay actually used: core's {@link delayBucket} (a 1-1.5-2-3-4-5-7 ladder, at most 1.5× longer, at least 10 ms). */
export function retryBucket(delayMs: number): number {
  return delayBucket(delayMs);
}

/**
 * The delay queue of a retry: messages wait `bucketMs` (queue TTL, so no head-of-line blocking) and are
 * dead-lettered back to `queueName` through the default exchange. The delay lives in RabbitMQ, so it
 * survives a consumer restart. Unused delay queues expire on their own.
 */
export function retryPlan(queueName: string, bucketMs: number): QueuePlan {
  let name = `${queueName}.retry.${bucketMs}`;
  if (Buffer.byteLength(name) > 255) {
    name = `ferry.retry.${createHash('sha256').update(queueName).digest('hex').slice(0, 32)}.${bucketMs}`;
  }
  return {
    name,
    passive: false,
    options: {
      durable: true,
      arguments: {
        'x-message-ttl': bucketMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': queueName,
        'x-expires': Math.max(bucketMs * 2, bucketMs + 60_000),
      },
    },
    bindings: [],
  };
}

/** A RabbitMQ channel or connection error as Ferry's typed error: what was refused, and what to do. */
export function topologyError(error: unknown, what: string): FerryError {
  const e = error as { code?: number; message?: string };
  const text = (e.message ?? String(error)).replace(/^Operation failed: \w+; /, '');
  switch (e.code) {
    case 406:
      return new ConfigurationError(
        `${what} conflicts with what exists on RabbitMQ: ${text}. Declare it with the same arguments, delete it, or use { amqp: { passive: true } }`,
        { code: ErrorCode.CONFIGURATION, cause: error },
      );
    case 404:
      return new ConfigurationError(`${what} does not exist on RabbitMQ: ${text}. Declare it, or drop passive`, {
        code: ErrorCode.INVALID_DESTINATION,
        cause: error,
      });
    case 403:
      return new ConfigurationError(
        `${what} refused by RabbitMQ: ${text}. Grant the user configure rights on it, or use { amqp: { passive: true } }`,
        { cause: error },
      );
    default:
      return new ConnectionError(`${what} failed: ${text}`, { cause: error });
  }
}

/**
 * Declares (or checks) plans on a channel of their own, so that a refused declaration (406, 404, 403)
 * closes only that channel, never the connection or the channels carrying messages.
 */
export async function declare(model: ChannelModel, plans: ReadonlyArray<QueuePlan | ExchangePlan>): Promise<void> {
  let channel: Channel | undefined;
  let channelError: unknown;
  try {
    channel = await model.createChannel();
    channel.on('error', (error: unknown) => {
      channelError = error;
    });
    for (const plan of plans) {
      const ex = 'bindings' in plan ? plan.exchange : plan;
      if (ex !== undefined) {
        try {
          if (ex.passive) await channel.checkExchange(ex.name);
          else await channel.assertExchange(ex.name, ex.type, { durable: true });
        } catch (error) {
          throw topologyError(channelError ?? error, `Exchange "${ex.name}"`);
        }
      }
      if (!('bindings' in plan)) continue;
      try {
        if (plan.passive) await channel.checkQueue(plan.name);
        else await channel.assertQueue(plan.name, plan.options);
        for (const b of plan.bindings) await channel.bindQueue(plan.name, b.exchange, b.pattern, b.args);
      } catch (error) {
        throw topologyError(channelError ?? error, `Queue "${plan.name}"`);
      }
    }
  } finally {
    if (channel !== undefined && channelError === undefined) await channel.close().catch(() => undefined);
  }
}
