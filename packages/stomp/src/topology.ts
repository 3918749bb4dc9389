import { createHash } from 'node:crypto';
import { deadLetterQueueName, type Destination, type Queue, type Topic } from '@ferry/core';

/**
 * How Ferry's destinations map onto STOMP destinations and headers. This is the RabbitMQ dialect
 * (rabbitmq_stomp 3.10): `/queue/`, `/topic/` on `amq.topic`, `/amq/queue/`, queue arguments as `x-*`
 * headers, durable topic subscriptions with `durable`, `auto-delete`, `id` and `x-queue-name`. Other
 * brokers (ActiveMQ, Artemis) would get their own dialect here.
 */
export interface Dialect {
  /** Where a publish goes. */
  publishTarget(destination: Destination): string;
  /** Headers that declare a queue the way Ferry means it when a SEND creates it. */
  declareHeaders(destination: Destination): Record<string, string>;
  /** What a subscription SUBSCRIBEs to, with which headers, and the queue its messages live in. */
  subscription(source: Destination, group: string | undefined, id: string, concurrency: number): SubscriptionPlan;
  /** Where a retry copy goes after `bucketMs` (a delay queue declared by its SEND headers), or at once when 0. */
  retryTarget(
    queueName: string,
    bucketMs: number,
  ): {
    /** The STOMP destination to SEND the copy to. */
    destination: string;
    /** Headers that declare the delay queue (empty for a copy sent straight back). */
    headers: Record<string, string>;
  };
}

/** One SUBSCRIBE. */
export interface SubscriptionPlan {
  /** The STOMP destination to SUBSCRIBE to. */
  readonly destination: string;
  /** Headers of the SUBSCRIBE frame (queue shape, `prefetch-count`, `x-queue-name`, ...). */
  readonly headers: Record<string, string>;
  /** The RabbitMQ queue behind it (retries go straight back to it). */
  readonly queueName: string;
  /** The queue outlives its subscribers: a queue (unless `durable: false`) or a group, not a private subscription. */
  readonly durable: boolean;
}

function queueShape(durable: boolean): Record<string, string> {
  return { durable: String(durable), 'auto-delete': 'false', exclusive: 'false' };
}

function hintHeaders(destination: Destination): Record<string, string> {
  return { ...destination.options.stomp?.headers };
}

/** The RabbitMQ dialect, the default. */
export const RABBITMQ: Dialect = {
  publishTarget(destination) {
    return destination.kind === 'queue' ? `/queue/${destination.name}` : `/topic/${destination.name}`;
  },

  declareHeaders(destination) {
    // Without these, RabbitMQ reads a SEND's `persistent:false` as "declare a non-durable queue" and makes
    // it exclusive to the sending connection.
    if (destination.kind !== 'queue') return {};
    return { ...queueShape(destination.options.durable !== false), ...hintHeaders(destination) };
  },

  subscription(source, group, id, concurrency) {
    const common = { ack: 'client-individual', 'prefetch-count': String(concurrency), id };
    if (source.kind === 'queue') {
      return {
        destination: `/queue/${source.name}`,
        headers: { ...queueShape(source.options.durable !== false), ...hintHeaders(source), ...common },
        queueName: source.name,
        durable: source.options.durable !== false,
      };
    }
    const t: Topic = source;
    if (group === undefined) {
      const queueName = `${deadLetterQueueName(t).replace(/\.dlq$/, '')}.private-${id}`;
      return {
        destination: `/topic/${t.name}`,
        headers: { ...common, durable: 'false', 'auto-delete': 'true', 'x-queue-name': queueName },
        queueName,
        durable: false,
      };
    }
    // The same queue name as the AMQP transport's group queue: AMQP and STOMP members of one group share it.
    const queueName = deadLetterQueueName(t, group).replace(/\.dlq$/, '');
    return {
      destination: `/topic/${t.name}`,
      headers: { ...hintHeaders(t), ...common, durable: 'true', 'auto-delete': 'false', 'x-queue-name': queueName },
      queueName,
      durable: true,
    };
  },

  retryTarget(queueName, bucketMs) {
    if (bucketMs <= 0) return { destination: `/amq/queue/${queueName}`, headers: {} };
    // The same delay queue, with the same arguments, as the AMQP transport declares.
    let name = `${queueName}.retry.${bucketMs}`;
    if (Buffer.byteLength(name) > 255) name = `ferry.retry.${hash(queueName)}.${bucketMs}`;
    return {
      destination: `/queue/${name}`,
      headers: {
        ...queueShape(true),
        'x-message-ttl': String(bucketMs),
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': queueName,
        'x-expires': String(Math.max(bucketMs * 2, bucketMs + 60_000)),
      },
    };
  },
};

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Whether a publish to `destination` should be persistent (durable destinations). */
export function isDurable(destination: Queue | Topic): boolean {
  return destination.kind === 'queue' ? destination.options.durable !== false : true;
}
