import { randomBytes } from 'node:crypto';
import type { TransportContext } from '@ferry/core';
import { ManagedConnection } from './connection.js';
import type { MqttSettings } from './options.js';

/** Probe results per broker (`host:port`): does a 3.1.1 broker deliver through `$share/…`? */
const probes = new Map<string, Promise<boolean>>();

/**
 * MQTT 3.1.1 has no way to ask whether the broker does shared subscriptions, and RabbitMQ's plugin
 * takes `$share/…` as a literal topic without a word: subscribe through a share and publish once.
 */
export function probeSharedSubscriptions(context: TransportContext, settings: MqttSettings): Promise<boolean> {
  const key = `${settings.host}:${settings.port}`;
  let probe = probes.get(key);
  if (probe === undefined) {
    probe = (async () => {
      const id = randomBytes(6).toString('hex');
      const connection = new ManagedConnection(
        { role: 'probe', clientId: `ferry-probe-${id}`, clean: true, sessionExpirySec: 0 },
        settings,
        context.reconnect,
        context.logger,
        context.redactor,
      );
      const session = await connection.open();
      try {
        return await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 2_000);
          session.client.on('message', (topic) => {
            if (topic === `ferry.probe/${id}`) {
              clearTimeout(timer);
              resolve(true);
            }
          });
          session.client.on('close', () => resolve(false));
          session.client.subscribe(`$share/ferry-probe-${id}/ferry.probe/${id}`, { qos: 1 }, (error, granted) => {
            if (error || (granted ?? []).some((g) => g.qos >= 0x80)) {
              clearTimeout(timer);
              resolve(false);
              return;
            }
            session.client.publish(`ferry.probe/${id}`, 'probe', { qos: 1 });
          });
        });
      } finally {
        await connection.close();
      }
    })();
    probes.set(key, probe);
    probe.catch(() => probes.delete(key));
  }
  return probe;
}
