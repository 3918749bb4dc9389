import { createHash } from 'node:crypto';
import { ConfigurationError, ErrorCode, UnsupportedError, type Destination, topic } from '@ferry/core';

/**
 * First level of the topics retries of a topic group or a private subscription go to. It holds a dot,
 * which no topic key can put into a level, so it never meets a topic.
 */
export const RETRY_TOPIC_PREFIX = 'ferry.retry';

/**
 * Prefix of a queue's MQTT topic: `queue(orders)` is the one-level topic `queue.orders`. Topic keys
 * become levels at their dots, so no topic key can name a queue's topic: a queue and a topic of the
 * same name stay apart.
 */
export const QUEUE_TOPIC_PREFIX = 'queue.';

function invalid(message: string): ConfigurationError {
  return new ConfigurationError(message, { code: ErrorCode.INVALID_DESTINATION });
}

// eslint-disable-next-line no-control-regex -- NUL and control characters are what we reject
const FORBIDDEN = /[+#\u0000]/;

/** Checks an MQTT topic name Ferry is about to publish to. @throws ConfigurationError */
function checkTopicName(name: string, what: string): string {
  if (name.length === 0 || FORBIDDEN.test(name) || name.startsWith('$')) {
    throw invalid(
      `Cannot use ${what} ${JSON.stringify(name)} on MQTT: '+', '#' and NUL are MQTT wildcards or forbidden, and topics starting with '$' are reserved for the broker`,
    );
  }
  if (Buffer.byteLength(name) > 65_535) throw invalid(`MQTT topic ${what} is longer than 65535 bytes`);
  return name;
}

/** The MQTT topic of a queue: `queue.<name>`, one level. @throws ConfigurationError */
function queueTopic(name: string): string {
  if (name.includes('/')) throw invalid(`Queue names cannot contain '/' on MQTT: ${name}`);
  return checkTopicName(`${QUEUE_TOPIC_PREFIX}${name}`, 'queue name');
}

/**
 * The MQTT topic a destination is published to: a queue's is `queue.<name>` (`queue.orders`), a
 * topic's is its routing key with dots as levels (`orders.created` → `orders/created`).
 * @throws ConfigurationError
 */
export function publishTopic(destination: Destination): string {
  if (destination.kind === 'queue') return queueTopic(destination.name);
  if (destination.isPattern) {
    throw invalid(`Cannot publish to the pattern ${JSON.stringify(destination.name)}: publish to a concrete key`);
  }
  for (const word of destination.name.split('.')) {
    if (word.includes('/')) throw invalid(`Topic key words cannot contain '/' on MQTT: ${destination.name}`);
  }
  return checkTopicName(destination.name.split('.').join('/'), 'topic key');
}

/** The MQTT topic filter of a destination: `*` → `+`, `#` → `#`, dots → levels. */
export function topicFilter(destination: Destination): string {
  if (destination.kind === 'queue') return queueTopic(destination.name);
  const words = destination.name.split('.').map((word) => {
    if (word === '*') return '+';
    if (word === '#') return '#';
    if (word.includes('/') || FORBIDDEN.test(word)) {
      throw invalid(
        `Invalid word ${JSON.stringify(word)} in topic pattern ${JSON.stringify(destination.name)} on MQTT`,
      );
    }
    return word;
  });
  const filter = words.join('/');
  if (filter.startsWith('$')) throw invalid(`MQTT topics starting with '$' are reserved: ${destination.name}`);
  return filter;
}

/** Where the retry copy of a message received on `topicName` goes. */
export function retryTopic(plan: SubscriptionPlan, topicName: string): string {
  if (plan.retryPrefix === undefined || topicName.startsWith(`${plan.retryPrefix}/`)) return topicName;
  return `${plan.retryPrefix}/${topicName}`;
}

/** The routing key of a received MQTT topic name (a retry copy's original topic): levels → dots. */
export function keyOf(plan: SubscriptionPlan, topicName: string): string {
  const original =
    plan.retryPrefix !== undefined && topicName.startsWith(`${plan.retryPrefix}/`)
      ? topicName.slice(plan.retryPrefix.length + 1)
      : topicName;
  return original.split('/').join('.');
}

/** A share name MQTT accepts (no '/', '+', '#'). */
function shareName(name: string): string {
  return name.replace(/[/+#]/g, '_');
}

/** Short stable hash, for client ids. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 10);
}

/** How one subscription maps onto MQTT. @internal */
export interface SubscriptionPlan {
  /** The topic filters to SUBSCRIBE to (the destination's, and the subscription's own retry topic). */
  readonly filters: readonly string[];
  /**
   * Topic level prefix of this subscription's retry copies (`ferry-retry/<id>`; the original topic's
   * levels follow, so the handler still sees the key), or undefined for a queue, whose retries go to
   * the queue itself.
   */
  readonly retryPrefix: string | undefined;
  /** Shared subscription name, when the subscription is a queue or a group. */
  readonly share: string | undefined;
  /** What the client id is derived from: equal for every member of one queue or group. */
  readonly sessionKey: string;
  /** Human-readable label, for errors. */
  readonly label: string;
}

/**
 * Plans a subscription: a queue or a topic group is a shared subscription (`$share/<name>/<filter>`),
 * plus its own retry topic so that a retry reaches this queue or group only; a private topic
 * subscription is a plain one. Without shared subscriptions (RabbitMQ's MQTT plugin) a queue is a
 * plain subscription with a single consumer and a group is refused.
 *
 * @throws UnsupportedError for a group when the broker has no shared subscriptions.
 */
export function planSubscription(
  source: Destination,
  group: string | undefined,
  privateId: string,
  sharedSubscriptions: boolean,
): SubscriptionPlan {
  const filter = topicFilter(source);
  if (source.kind === 'queue') {
    const share = sharedSubscriptions ? shareName(source.name) : undefined;
    return {
      filters: [share === undefined ? filter : `$share/${share}/${filter}`],
      retryPrefix: undefined,
      share,
      sessionKey: `queue:${source.name}`,
      label: `queue ${source.name}`,
    };
  }
  if (group !== undefined) {
    if (!sharedSubscriptions) {
      throw new UnsupportedError(
        `Topic groups need MQTT shared subscriptions, which this broker does not support (RabbitMQ's MQTT plugin has none): subscribe without a group, or use the AMQP or STOMP transport on RabbitMQ`,
      );
    }
    const share = shareName(group);
    const retryPrefix = `${RETRY_TOPIC_PREFIX}/${shortHash(`${source.name}#${group}`)}`;
    return {
      filters: [`$share/${share}/${filter}`, `$share/${share}/${retryPrefix}/#`],
      retryPrefix,
      share,
      sessionKey: `group:${source.name}#${group}`,
      label: `topic ${source.name} (group ${group})`,
    };
  }
  const retryPrefix = `${RETRY_TOPIC_PREFIX}/${privateId}`;
  return {
    filters: [filter, `${retryPrefix}/#`],
    retryPrefix,
    share: undefined,
    sessionKey: `private:${privateId}`,
    label: `topic ${source.name}`,
  };
}

/** Where a received message was published: the queue, or the topic with its concrete key. */
export function destinationOf(source: Destination, plan: SubscriptionPlan, topicName: string): Destination {
  if (source.kind === 'queue') return source;
  try {
    return topic(keyOf(plan, topicName), source.options);
  } catch {
    return source;
  }
}
