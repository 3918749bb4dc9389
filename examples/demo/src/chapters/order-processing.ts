import { runTour, SERVICE_NAMES } from '@ferry/example-order-processing';
// Only for its types: ConnectOptions gains `mqtt` (the transport itself is loaded by connect()).
import type {} from '@ferry/mqtt';
import type { Chapter } from '../scene.js';
import { expect, failureOf } from '../wait.js';

/** Orders of the first round; the second, placed while shipping is down, has half as many. */
const ORDERS = 4;
const INSTANCES = 2;
/**
 * On MQTT each instance keeps a persistent session, for a comeback under its name. The tour's comeback
 * comes within seconds, and the names are new on every run: let the sessions end a minute after the
 * tour instead of the default day.
 */
const MQTT_SESSION_EXPIRY_SEC = 60;

/** Chapter 5: the order-processing example's tour, told by the example itself. */
export const orderProcessing: Chapter = {
  title: 'Order processing: a shop, three services, one of them down for a while',
  requires: ['groups', 'competingConsumers'],
  async run(scene) {
    const { say, relay } = scene;
    const prefix = `demo-${scene.run}`;
    // Short enough for the tour's columns; on MQTT each names a persistent session, new on every run.
    const instanceBase = `demo-${scene.run.slice(0, 5)}`;
    say(`runTour() from @ferry/example-order-processing, prefix "${prefix}" (new on every run)`);
    let report;
    try {
      report = await runTour({
        url: scene.url,
        prefix,
        orders: ORDERS,
        instances: INSTANCES,
        instanceBase,
        // One process: the in-process store is enough, and nothing is left in Redis.
        redis: 'off',
        connectOptions: { mqtt: { sessionExpirySec: MQTT_SESSION_EXPIRY_SEC } },
        print: relay,
      });
    } catch (error) {
      throw failureOf('the order-processing tour', error);
    }
    const expected = ORDERS + Math.ceil(ORDERS / 2);
    expect(report.orders.length === expected, `the tour placed ${report.orders.length} orders, expected ${expected}`);
    for (const service of SERVICE_NAMES) {
      const { runs } = report.services[service];
      expect(runs === expected, `${service} ran its handler ${runs} times for ${expected} orders`);
    }
    scene.proved(
      `every service handled each of the ${expected} orders exactly once, and shipping caught up after its downtime`,
    );
  },
};
