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
  readonly id: string;
  readonly type: string;
  readonly source: string;
  /** RFC 3339 timestamp. */
  readonly time: string;
  readonly specversion: '1.0';
  readonly datacontenttype: string;
  readonly subject?: string;
  /** Ordering key (CloudEvents `partitionkey`). */
  readonly key?: string;
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
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly specversion: string;
  readonly time?: string;
  readonly datacontenttype?: string;
  readonly subject?: string;
  readonly partitionkey?: string;
}

/**
 * A message as transports carry it: attributes, headers (application headers plus Ferry's `ferry-*`)
 * and the encoded body. Transports map it onto their protocol; they never see typed data.
 */
export interface Envelope {
  readonly attributes: EnvelopeAttributes;
  readonly headers: Headers;
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
