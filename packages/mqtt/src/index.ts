/**
 * `@ferry/mqtt`: Ferry's MQTT 5 / 3.1.1 transport on mqtt.js (Mosquitto, RabbitMQ's MQTT plugin, any
 * MQTT broker). `connect('mqtt://…')` loads it.
 *
 * @packageDocumentation
 */
export { createTransport, MqttTransport } from './transport.js';
export { mqttCapabilities, MQTT_MAX_MESSAGE_BYTES } from './options.js';
export type { MqttConnectOptions, MqttHints, QoS } from './options.js';
export { publishTopic, topicFilter, RETRY_TOPIC_PREFIX, QUEUE_TOPIC_PREFIX } from './topics.js';
export { persistentSessions } from './sessions.js';
export { CORRELATION_HEADER } from './wire.js';
