/**
 * `@ferry/core`: Ferry's contract. Connect by URL, publish to queues and topics, consume with retries
 * and dead letters, the same on every transport.
 *
 * @packageDocumentation
 * @module @ferry/core
 */
export { connect, DEFAULT_URL, TRANSPORT_PACKAGES } from './connect.js';
export { queue, topic, topicMatches, deadLetterQueueName, describeDestination } from './destination.js';
export type {
  Queue,
  Topic,
  Destination,
  QueueOptions,
  TopicOptions,
  TransportHints,
  ContentMode,
} from './destination.js';
export type { Broker, BrokerEvents } from './broker.js';
export type { Producer } from './producer.js';
export type { Consumer, Subscription, Handler } from './consumer.js';
export type { Message, OutgoingMessage, Headers, Envelope, EnvelopeAttributes } from './message.js';
export { ENVELOPE_ATTRIBUTE_NAMES } from './message.js';
export type { Capabilities, Health, HealthStatus } from './capabilities.js';
export type {
  ConnectOptions,
  ProducerOptions,
  ConsumerOptions,
  SubscribeOptions,
  RetryOptions,
  TransportConnectOptions,
} from './options.js';
export { DEFAULT_RETRY, DEFAULT_PUBLISH_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES } from './options.js';
export { defineEvent } from './event.js';
export type { EventContract, EventExtras, Infer, InferInput, ContractMessage } from './event.js';
export {
  ErrorCode,
  FerryError,
  ConfigurationError,
  ConnectionError,
  PublishError,
  ValidationError,
  DecodeError,
  ClosedError,
  UnsupportedError,
  PermanentError,
  isPermanent,
  toFerryError,
} from './errors.js';
export type { ErrorCodeValue, FerryErrorOptions, ValidationIssue } from './errors.js';
export {
  CodecRegistry,
  jsonCodec,
  bytesCodec,
  textCodec,
  JSON_CONTENT_TYPE,
  BYTES_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
} from './codec.js';
export type { Codec, JsonCodecOptions } from './codec.js';
export {
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_TIME,
  HEADER_TRACEPARENT,
  HEADER_TRACESTATE,
  CLOUDEVENTS_HEADER_PREFIX,
  FERRY_HEADER_PREFIX,
  isReservedHeader,
} from './headers.js';
export type {
  PublishContext,
  ConsumeContext,
  SubscriptionInfo,
  PublishMiddleware,
  ConsumeMiddleware,
} from './context.js';
export type { Middleware } from './middleware/compose.js';
export { idempotency, MemoryIdempotencyStore } from './middleware/idempotency.js';
export type {
  IdempotencyStore,
  IdempotencyOptions,
  ClaimResult,
  MemoryIdempotencyStoreOptions,
} from './middleware/idempotency.js';
export { ExponentialBackoff, delayBucket } from './backoff.js';
export type { Backoff, BackoffOptions } from './backoff.js';
export type { Logger, LogFields } from './logger.js';
export { silentLogger } from './logger.js';
export { Redactor, REDACTED } from './redact.js';
export { memoryHub, deleteMemoryHub, MemoryHub, DEFAULT_MAX_QUEUE_LENGTH } from './memory/hub.js';
export type { MemoryQueueStats } from './memory/hub.js';
export { MEMORY_CAPABILITIES, createMemoryTransport } from './memory/transport.js';

// The transport SPI, for transport packages.
export type {
  Transport,
  TransportFactory,
  TransportContext,
  TransportEvents,
  TransportPublishOptions,
  TransportSubscribeOptions,
  TransportSubscription,
  Delivery,
} from './transport.js';
export { createEnvelope, toPrefixedHeaders, fromPrefixedHeaders, attemptOf, SPEC_VERSION } from './envelope.js';
export type { EnvelopeFallback } from './envelope.js';
export {
  encodeStructured,
  decodeStructured,
  looksStructured,
  readEnvelope,
  STRUCTURED_CONTENT_TYPE,
} from './structured.js';
export type { ReceivedMessage } from './structured.js';
export { Emitter } from './emitter.js';
export { coalesceWrites } from './socket.js';
export { LinkState, Reconnector, InDoubtError, abortable, pause, resendInDoubt } from './link.js';
export type { LinkEvents, ReconnectTarget, ResumablePart } from './link.js';
export type { EventMap } from './emitter.js';
