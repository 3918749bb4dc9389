/**
 * `@ferry/amqp`: Ferry's AMQP 0-9-1 transport for RabbitMQ, on amqplib. `connect('amqp://…')` loads it.
 *
 * @packageDocumentation
 */
export { createTransport, AmqpTransport } from './transport.js';
export { AMQP_CAPABILITIES } from './options.js';
export type { AmqpConnectOptions, AmqpHints } from './options.js';
export { DEFAULT_TOPIC_EXCHANGE, retryBucket } from './topology.js';
