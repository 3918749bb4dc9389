import { afterAll } from 'vitest';
import { describeConformance } from '@ferry/conformance';
import { mqttCapabilities } from '../src/index.js';
import { conformanceOptions, RABBITMQ_V4, removeSessions } from './broker.js';

describeConformance({
  name: 'mqtt (RabbitMQ 3.10 MQTT plugin, 3.1.1)',
  capabilities: mqttCapabilities({
    sharedSubscriptions: false,
    protocolVersion: 4,
    stableInstance: true,
    crashDurable: false,
    reportsUnrouted: false,
  }),
  ...conformanceOptions(RABBITMQ_V4),
  only: 'shared',
});

afterAll(async () => {
  await removeSessions(RABBITMQ_V4);
});
