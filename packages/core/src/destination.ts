import { ConfigurationError, ErrorCode } from './errors.js';

/**
 * Transport-specific hints a destination can carry. Core never reads them: each transport package
 * adds its own key by module augmentation, e.g. `declare module '@ferry/core' { interface TransportHints { amqp?: AmqpHints } }`.
 * Hints for other transports are ignored, so one destination definition works everywhere.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- open for module augmentation
export interface TransportHints {}

/** How the envelope travels: as headers (`binary`, the default) or as a CloudEvents JSON document in the body (`structured`). */
export type ContentMode = 'binary' | 'structured';

/** Options of {@link queue}. */
export interface QueueOptions extends TransportHints {
  /** Keep messages while no consumer runs and (where the broker can) across broker restarts. Default `true`. */
  readonly durable?: boolean;
  /** Envelope encoding on the wire. Default `'binary'`. */
  readonly contentMode?: ContentMode;
}

/** Options of {@link topic}. */
export interface TopicOptions extends TransportHints {
  /** Reject a publish that no subscription receives with `FERRY_UNROUTABLE` (where `capabilities.unroutableDetection`). Default `false`: a fan-out event nobody listens to is normal. */
  readonly mandatory?: boolean;
  /** Envelope encoding on the wire. Default `'binary'`. */
  readonly contentMode?: ContentMode;
}

/** A point-to-point work queue: each message is handled by exactly one of the competing consumers. */
export interface Queue {
  /** Tells a queue from a topic. */
  readonly kind: 'queue';
  /** The queue's name, as given to `queue()`. */
  readonly name: string;
  /** The options it was made with (frozen). */
  readonly options: QueueOptions;
}

/**
 * A publish/subscribe topic: every subscriber group receives every message. The name is a dot-separated
 * routing key; subscriptions may use `*` (exactly one word) and `#` (zero or more words).
 */
export interface Topic {
  /** Tells a topic from a queue. */
  readonly kind: 'topic';
  /** The routing key (publishing) or pattern (subscribing), as given to `topic()`. */
  readonly name: string;
  /** The options it was made with (frozen). */
  readonly options: TopicOptions;
  /** True when the name holds `*` or `#`: it can be subscribed to, not published to. */
  readonly isPattern: boolean;
}

/** Where a message is published to or consumed from. */
export type Destination = Queue | Topic;

const MAX_NAME = 200;
const MAX_QUEUE_NAME = 255;
const QUEUE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;
const WORD = /^[A-Za-z0-9_:-]+$/;
const GROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_:-]*$/;

function invalid(message: string): ConfigurationError {
  return new ConfigurationError(message, { code: ErrorCode.INVALID_DESTINATION });
}

/**
 * A durable point-to-point queue. Names: letters, digits, `_ . : -`, at most 255 characters (251 to leave room for `.dlq`),
 * so the same name is valid on AMQP, MQTT and STOMP.
 *
 * @throws ConfigurationError (`FERRY_INVALID_DESTINATION`) on an invalid name.
 */
export function queue(name: string, options: QueueOptions = {}): Queue {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_QUEUE_NAME || !QUEUE_NAME.test(name)) {
    throw invalid(
      `Invalid queue name ${JSON.stringify(name)}: use 1-${MAX_QUEUE_NAME} letters, digits, '_', '.', ':' or '-', starting with a letter, digit or '_'`,
    );
  }
  return Object.freeze({ kind: 'queue', name, options: Object.freeze({ ...options }) });
}

/**
 * A topic. Publish to a concrete key (`orders.created`); subscribe with a pattern (`orders.*`, `orders.#`).
 *
 * @throws ConfigurationError (`FERRY_INVALID_DESTINATION`) on an invalid name.
 */
export function topic(name: string, options: TopicOptions = {}): Topic {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) {
    throw invalid(`Invalid topic name ${JSON.stringify(name)}: use 1-${MAX_NAME} characters`);
  }
  let isPattern = false;
  for (const word of name.split('.')) {
    if (word === '*' || word === '#') isPattern = true;
    else if (!WORD.test(word)) {
      throw invalid(
        `Invalid topic name ${JSON.stringify(name)}: words are separated by '.', each made of letters, digits, '_', ':' or '-', or a whole-word wildcard '*' or '#'`,
      );
    }
  }
  return Object.freeze({ kind: 'topic', name, options: Object.freeze({ ...options }), isPattern });
}

/** Checks a subscriber group name (letters, digits, `_ : -`). @throws ConfigurationError */
export function assertGroupName(group: string): void {
  if (typeof group !== 'string' || group.length === 0 || group.length > 50 || !GROUP_NAME.test(group)) {
    throw invalid(
      `Invalid group name ${JSON.stringify(group)}: use 1-50 letters, digits, '_', ':' or '-' (no '.'), starting with a letter, digit or '_'`,
    );
  }
}

/** True when the concrete routing `key` matches the topic `pattern` (`*` one word, `#` zero or more words). */
export function topicMatches(pattern: string, key: string): boolean {
  return matchWords(pattern.split('.'), 0, key.split('.'), 0);
}

function matchWords(p: readonly string[], i: number, k: readonly string[], j: number): boolean {
  while (i < p.length) {
    const word = p[i];
    if (word === '#') {
      if (i === p.length - 1) return true;
      for (let skip = j; skip <= k.length; skip++) if (matchWords(p, i + 1, k, skip)) return true;
      return false;
    }
    if (j >= k.length || (word !== '*' && word !== k[j])) return false;
    i++;
    j++;
  }
  return j === k.length;
}

/**
 * The dead-letter queue name for a subscription (DESIGN.md "Decided"): `queue(n)` → `n.dlq`;
 * group `g` of `topic(t)` → `t.g.dlq`; a subscription without a group → `t.dlq`.
 */
export function deadLetterQueueName(source: Destination, group?: string): string {
  if (source.kind === 'queue') return `${source.name}.dlq`;
  const base = source.name.replaceAll('*', 'star').replaceAll('#', 'hash');
  return group === undefined ? `${base}.dlq` : `${base}.${group}.dlq`;
}

/** A short human-readable label, e.g. `queue:orders` or `topic:orders.*`. */
export function describeDestination(destination: Destination): string {
  return `${destination.kind}:${destination.name}`;
}
