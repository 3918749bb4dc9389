import { afterAll, beforeAll } from 'vitest';
import { describeConformance, FaultProxy } from '@ferry/conformance';
import { mqttCapabilities } from '../src/index.js';
import { conformanceOptions, RABBITMQ_V4, removeSessions, type MqttTarget } from './broker.js';
import { privateMosquittoForFile } from './private-mosquitto.js';

/**
 * The exclusive (fault) cases, every connection through one fault proxy per broker: dropping or refusing
 * them touches only this file's connections, never the shared brokers, so this file runs beside the others.
 */
function faultSuite(name: string, target: MqttTarget, shared: boolean): void {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await FaultProxy.start({ target: { host: target.host, port: target.port } });
  });
  afterAll(async () => {
    await proxy.close();
    await removeSessions(target);
  });
  const options = conformanceOptions(target);
  describeConformance({
    name,
    capabilities: mqttCapabilities({
      sharedSubscriptions: shared,
      protocolVersion: target.protocolVersion,
      stableInstance: true,
      crashDurable: false,
      reportsUnrouted: target.protocolVersion === 5,
    }),
    ...options,
    connect: (connectOptions) => conformanceOptions(target, proxy).connect(connectOptions),
    faults: {
      ...options.faults,
      dropConnections: () => proxy.cut(),
      stopBroker: () => proxy.refuse(),
      startBroker: () => Promise.resolve(proxy.accept()),
    },
    only: 'exclusive',
  });
}

faultSuite('mqtt (Mosquitto 2.0, MQTT 5) faults through a proxy', privateMosquittoForFile(5), true);
faultSuite('mqtt (RabbitMQ 3.10 MQTT plugin, 3.1.1) faults through a proxy', RABBITMQ_V4, false);
