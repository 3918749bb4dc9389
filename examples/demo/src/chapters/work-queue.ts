import { setTimeout as sleep } from 'node:timers/promises';
import { queue, ValidationError, type Consumer } from '@ferry/core';
import { describeOrder, OrderPlaced, type Order } from '../contract.js';
import type { Chapter } from '../scene.js';
import { paint } from '../style.js';
import { Collector, DemoError, expect } from '../wait.js';

const WORKERS = ['worker-a', 'worker-b'] as const;
const CONCURRENCY = 2;
const ORDERS: readonly Order[] = [
  { orderId: 'o-1001', customer: 'ada', total: 12.5 },
  { orderId: 'o-1002', customer: 'grace', total: 7.25 },
  { orderId: 'o-1003', customer: 'linus', total: 99 },
  { orderId: 'o-1004', customer: 'barbara', total: 3.1 },
  { orderId: 'o-1005', customer: 'ken', total: 42 },
  { orderId: 'o-1006', customer: 'margaret', total: 18.75 },
];

/** Chapter 1: a typed event contract, and a work queue shared by two competing workers. */
export const workQueue: Chapter = {
  title: 'A typed event contract and a work queue',
  requires: ['competingConsumers'],
  async run(scene) {
    const { broker, producer, say } = scene;
    const orders = queue('orders');

    say(`contract ${paint.name(`"${OrderPlaced.type}"`)} (zod): { orderId: "o-<digits>", customer, total > 0 }`);
    try {
      await producer.publish(orders, OrderPlaced.create({ orderId: 'o-1000', customer: 'mallory', total: -5 }));
      throw new DemoError('an order with a negative total was published: the contract did not refuse it');
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      say(`publish o-1000 with total -5 → ${paint.bad('refused')}, nothing sent (${paint.code(error.code)}):`);
      say(paint.dim(error.message), 1);
    }

    const handled = new Collector<{ orderId: string; worker: string }>();
    const peak = new Map<string, number>();
    const consumers: Consumer[] = [];
    for (const worker of WORKERS) {
      let inFlight = 0;
      const consumer = broker.consumer();
      consumers.push(consumer);
      await consumer.subscribe(
        orders,
        OrderPlaced,
        async (message) => {
          if (!scene.mine(message)) return;
          inFlight++;
          peak.set(worker, Math.max(peak.get(worker) ?? 0, inFlight));
          try {
            await sleep(20, undefined, { signal: message.signal }); // the "work"
          } finally {
            inFlight--;
          }
          handled.push({ orderId: message.data.orderId, worker });
        },
        { concurrency: CONCURRENCY },
      );
    }
    say(
      `queue ${paint.name('"orders"')}: ${WORKERS.map(paint.actor).join(' and ')} compete for its messages, up to ${CONCURRENCY} handlers each`,
    );

    for (const order of ORDERS) await producer.publish(orders, OrderPlaced.create(order, scene.stamp(order.orderId)));
    say(`published ${ORDERS.length} orders; who handled which:`);
    await handled.waitFor(ORDERS.length, `${ORDERS.length} orders handled`);
    await Promise.all(consumers.map((c) => c.close()));

    for (const order of ORDERS) {
      const by = handled.items.filter((h) => h.orderId === order.orderId).map((h) => h.worker);
      expect(by.length === 1, `${order.orderId} was handled ${by.length} times (${by.join(', ')}), expected once`);
      say(`${describeOrder(order)}  → ${by.map(paint.actor).join('')}`, 1);
    }
    expect(handled.items.length === ORDERS.length, `${handled.items.length} handler calls for ${ORDERS.length} orders`);
    const counts = WORKERS.map((w) => `${w} ${handled.items.filter((h) => h.worker === w).length}`);
    const peaks = WORKERS.map((w) => `${w} ${peak.get(w) ?? 0}`);
    for (const w of WORKERS) {
      const p = peak.get(w) ?? 0;
      expect(p <= CONCURRENCY, `${w} ran ${p} handlers at once, more than concurrency ${CONCURRENCY}`);
    }
    scene.proved(`each order handled exactly once: ${counts.join(', ')} (most at once: ${peaks.join(', ')})`);
  },
};
