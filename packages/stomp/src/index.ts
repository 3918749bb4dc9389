/**
 * `@ferry/stomp`: Ferry's STOMP 1.2 transport for RabbitMQ's STOMP plugin, on @stomp/stompjs.
 * `connect('stomp://…')` loads it.
 *
 * @packageDocumentation
 */
export { createTransport, StompTransport } from './transport.js';
export { STOMP_CAPABILITIES } from './options.js';
export type { StompConnectOptions, StompHints } from './options.js';
export { RABBITMQ } from './topology.js';
export type { Dialect, SubscriptionPlan } from './topology.js';
export { TcpStompSocket } from './socket.js';
