import type { Destination } from './destination.js';

/** Headers as a string map: trace context, correlation ids and other extensions. */
export type Headers = Readonly<Record<string, string>>;

/** What an application publishes. Only `type` and `data` are required. */
export interface OutgoingMessage<T = unknown> {
  /** CloudEvents `type`, e.g. `order.placed`. */
  readonly type: string;
  /** The payload: JSON-serialisable by default; a `Uint8Array`/`Buffer` or a string passes through unchanged. */
  readonly data: T;
  /** CloudEvents `id`, the deduplication key. Generated (UUID v4) when absent. */
  readonly id?: string;
  /** CloudEvents `subject`. */
  readonly subject?: string;
  /** Ordering key (CloudEvents `partitionkey`): messages with one key keep their order where the transport can. Never affects routing. */
  readonly key?: string;
  /** Application headers. Names starting with `ce-` or `ferry-` are reserved. */
  readonly headers?: Headers;
  /** Content type of `data`; chooses the codec. Default: inferred (bytes → `application/octet-stream`, string → `text/plain; charset=utf-8`, else `application/json`). */
  readonly datacontenttype?: string;
  /** CloudEvents `time`. Default: now. */
  readonly time?: Date | string;
}

/** What a handler receives: the CloudEvents 1.0 attributes, the decoded data and delivery facts. */
export interface Message<T = unknown> {
  /** CloudEvents `id`: the same on every delivery, retry and dead letter of this message (the deduplication key). */
  readonly id: string;
  /** CloudEvents `type`, e.g. `order.placed`. */
  readonly type: string;
  /** CloudEvents `source`: who published it (`ConnectOptions.source` of the publisher). */
  readonly source: string;
  /** RFC 3339 timestamp. */
  readonly time: string;
  /** CloudEvents `specversion`, always `1.0`. */
  readonly specversion: '1.0';
  /** Content type of the body; chose the codec that decoded `data`. */
  readonly datacontenttype: string;
  /** CloudEvents `subject`, when the publisher set one. */
  readonly subject?: string;
  /** Ordering key (CloudEvents `partitionkey`). */
  readonly key?: string;
  /** The decoded payload (the schema's output for a contract subscription; a `Buffer` with `decode: false`). */
  readonly data: T;
  /** Application headers. Ferry's and the protocol's control headers are not included, except the `ferry-dead-letter-*` ones a dead letter carries (anyone can publish those: trust them only on a dead-letter queue). */
  readonly headers: Headers;
  /** 1 on first delivery, incremented by each retry (and by broker redeliveries where counted). */
  readonly attempt: number;
  /** This message was delivered before: the broker flagged a redelivery (a previous delivery was not acknowledged), or this is a retry (`attempt > 1`). */
  readonly redelivered: boolean;
  /** Where it came from: the queue, or the topic with the concrete key it was published to. */
  readonly destination: Destination;
  /** Aborts when the handler timed out or the consumer is closing. */
  readonly signal: AbortSignal;
}

/** CloudEvents context attributes as they travel (transport SPI). */
export interface EnvelopeAttributes {
  /** CloudEvents `id`, the deduplication key. */
  readonly id: string;
  /** CloudEvents `type`. */
  readonly type: string;
  /** CloudEvents `source`. */
  readonly source: string;
  /** CloudEvents `specversion` (`1.0` for what Ferry sends). */
  readonly specversion: string;
  /** CloudEvents `time`, RFC 3339. */
  readonly time?: string;
  /** Content type of the body. */
  readonly datacontenttype?: string;
  /** CloudEvents `subject`. */
  readonly subject?: string;
  /** The ordering key (`OutgoingMessage.key`). */
  readonly partitionkey?: string;
}

/**
 * A message as transports carry it: attributes, headers (application headers plus Ferry's `ferry-*`)
 * and the encoded body. Transports map it onto their protocol; they never see typed data.
 */
export interface Envelope {
  /** The CloudEvents attributes. */
  readonly attributes: EnvelopeAttributes;
  /** Application headers plus Ferry's `ferry-*` headers (never `ce-*`: those are the attributes). */
  readonly headers: Headers;
  /** The encoded data, byte for byte. */
  readonly body: Uint8Array;
}

/** The CloudEvents attribute names that travel as `ce-` headers, in order. */
export const ENVELOPE_ATTRIBUTE_NAMES = [
  'id',
  'type',
  'source',
  'specversion',
  'time',
  'datacontenttype',
  'subject',
  'partitionkey',
] as const satisfies ReadonlyArray<keyof EnvelopeAttributes>;
