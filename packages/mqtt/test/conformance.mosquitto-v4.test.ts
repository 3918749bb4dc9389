import { describeConformance } from '@ferry/conformance';
import { mqttCapabilities } from '../src/index.js';
import { conformanceOptions } from './broker.js';
import { privateMosquittoForFile } from './private-mosquitto.js';

/** A private Mosquitto 2.0 configured as docs/transports/mqtt.md recommends (the machine's keeps the default max_queued_messages 1000, which silently drops in the full profile). */
const MOSQUITTO = privateMosquittoForFile(4);

describeConformance({
  name: 'mqtt (Mosquitto 2.0, MQTT 3.1.1)',
  capabilities: mqttCapabilities({
    sharedSubscriptions: true,
    protocolVersion: 4,
    stableInstance: true,
    crashDurable: false,
    reportsUnrouted: false,
  }),
  ...conformanceOptions(MOSQUITTO),
  only: 'shared',
});
