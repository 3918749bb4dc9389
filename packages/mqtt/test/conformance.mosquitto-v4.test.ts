import { afterAll } from 'vitest';
import { describeConformance } from '@ferry/conformance';
import { mqttCapabilities } from '../src/index.js';
import { conformanceOptions, MOSQUITTO_V4, removeSessions } from './broker.js';

describeConformance({
  name: 'mqtt (Mosquitto 2.0, MQTT 3.1.1)',
  capabilities: mqttCapabilities({
    sharedSubscriptions: true,
    protocolVersion: 4,
    stableInstance: true,
    crashDurable: false,
  }),
  ...conformanceOptions(MOSQUITTO_V4),
  only: 'shared',
});

afterAll(async () => {
  await removeSessions(MOSQUITTO_V4);
});
