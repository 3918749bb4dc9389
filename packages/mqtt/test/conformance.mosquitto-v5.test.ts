import { afterAll } from 'vitest';
import { describeConformance } from '@ferry/conformance';
import { mqttCapabilities } from '../src/index.js';
import { conformanceOptions, MOSQUITTO_V5, removeSessions } from './broker.js';

describeConformance({
  name: 'mqtt (Mosquitto 2.0, MQTT 5)',
  capabilities: mqttCapabilities({
    sharedSubscriptions: true,
    protocolVersion: 5,
    stableInstance: true,
    crashDurable: false,
  }),
  ...conformanceOptions(MOSQUITTO_V5),
  only: 'shared',
});

afterAll(async () => {
  await removeSessions(MOSQUITTO_V5);
});
