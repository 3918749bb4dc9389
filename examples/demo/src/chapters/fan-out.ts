import { topic, type Consumer } from '@ferry/core';
import { OrderPlaced, type Order } from '../contract.js';
import type { Chapter } from '../scene.js';
import { paint } from '../style.js';
import { Collector, expect } from '../wait.js';

/** Who listens to the topic: two competing billing instances, one shipping instance, a private audit log. */
const MEMBERS: ReadonlyArray<{ readonly name: string; readonly group?: string }> = [
  { name: 'billing-1', group: 'billing' },
  { name: 'billing-2', group: 'billing' },
  { name: 'shipping-1', group: 'shipping' },
  { name: 'audit' },
];
const LISTENERS = ['billing', 'shipping', 'audit'] as const;
const EVENTS: readonly Order[] = [
  { orderId: 'o-2001', customer: 'alan', total: 20 },
  { orderId: 'o-2002', customer: 'edsger', total: 35.5 },
  { orderId: 'o-2003', customer: 'frances', total: 8 },
];

/** Chapter 2: publish/subscribe fan-out with groups and a group-less subscription. */
export const fanOut: Chapter = {
  title: 'Fan-out: every group gets every event',
  requires: ['groups', 'competingConsumers'],
  async run(scene) {
    const { broker, producer, say } = scene;
    const placed = topic('orders.placed');
    const seen = new Collector<{ listener: string; member: string; orderId: string }>();
    const consumers: Consumer[] = [];
    for (const { name, group } of MEMBERS) {
      const consumer = broker.consumer();
      consumers.push(consumer);
      await consumer.subscribe(
        placed,
        OrderPlaced,
        (message) => {
          if (scene.mine(message)) seen.push({ listener: group ?? name, member: name, orderId: message.data.orderId });
        },
        group === undefined ? {} : { group },
      );
    }
    const { actor } = paint;
    say(`topic ${paint.name('"orders.placed"')}:`);
    say(`group ${actor('billing')}  (${actor('billing-1')} and ${actor('billing-2')} compete inside the group)`, 1);
    say(`group ${actor('shipping')} (${actor('shipping-1')})`, 1);
    say(`${actor('audit')}          (no group: a private subscription, sees everything)`, 1);

    for (const event of EVENTS) await producer.publish(placed, OrderPlaced.create(event, scene.stamp(event.orderId)));
    const expected = EVENTS.length * LISTENERS.length;
    say(`published ${EVENTS.length} events; deliveries:`);
    await seen.waitFor(expected, `${expected} deliveries (${EVENTS.length} events × ${LISTENERS.length} listeners)`);
    await Promise.all(consumers.map((c) => c.close()));

    for (const listener of LISTENERS) {
      const got = EVENTS.map((event) => {
        const copies = seen.items.filter((s) => s.listener === listener && s.orderId === event.orderId);
        expect(copies.length === 1, `${listener} got ${event.orderId} ${copies.length} times, expected once`);
        return listener === 'audit' ? event.orderId : `${event.orderId} → ${actor(copies[0]?.member ?? '?')}`;
      });
      say(`${actor(listener)}${' '.repeat(Math.max(0, 8 - listener.length))} ${got.join(', ')}`, 1);
    }
    expect(seen.items.length === expected, `${seen.items.length} deliveries, expected ${expected}`);
    scene.proved('each group got each event exactly once; inside a group, one member took it');
  },
};
