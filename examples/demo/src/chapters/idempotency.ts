import { idempotency, queue, type ConsumeMiddleware } from '@ferry/core';
import { orderIdOf, OrderPlaced, type Order } from '../contract.js';
import type { Chapter } from '../scene.js';
import { paint } from '../style.js';
import { Collector, expect } from '../wait.js';

const FIRST: Order = { orderId: 'o-4001', customer: 'tim', total: 64 };
const SECOND: Order = { orderId: 'o-4002', customer: 'radia', total: 5.5 };

/** Chapter 4: the idempotency middleware turns a duplicated publish into one handler call. */
export const idempotent: Chapter = {
  title: 'Idempotency: a duplicate becomes one handler call',
  async run(scene) {
    const { broker, producer, say } = scene;
    const receipts = queue('receipts');
    const deliveries = new Collector<string>();
    const calls = new Collector<string>();

    // Outermost, so it sees every delivery, including those idempotency() acks without the handler.
    const countDeliveries: ConsumeMiddleware = async (ctx, next) => {
      try {
        await next();
      } finally {
        if (scene.mine(ctx.message)) deliveries.push(orderIdOf(ctx.message.data));
      }
    };
    const consumer = broker.consumer({ middleware: [countDeliveries, idempotency()] });
    await consumer.subscribe(receipts, OrderPlaced, (message) => {
      if (scene.mine(message)) calls.push(message.data.orderId);
    });
    say(`queue ${paint.name('"receipts"')}, consumed with broker.consumer({ middleware: [idempotency()] })`);

    const first = OrderPlaced.create(FIRST, scene.stamp(FIRST.orderId));
    await producer.publish(receipts, first);
    await producer.publish(receipts, first); // same id: a producer retrying after a lost confirm
    await producer.publish(receipts, OrderPlaced.create(SECOND, scene.stamp(SECOND.orderId)));
    say(`published ${FIRST.orderId} twice with the same id (a producer retrying), then ${SECOND.orderId}`);
    await deliveries.waitFor(3, '3 deliveries through the middleware');
    await consumer.close();

    const count = (items: readonly string[], id: string): number => items.filter((i) => i === id).length;
    for (const { orderId } of [FIRST, SECOND]) {
      const delivered = count(deliveries.items, orderId);
      const shown = delivered > 1 ? paint.warn(`delivered ${delivered}×`) : `delivered ${delivered}×`;
      say(`${orderId}  ${shown}, handler ran ${paint.ok(`${count(calls.items, orderId)}×`)}`, 1);
    }
    expect(count(deliveries.items, FIRST.orderId) === 2, `${FIRST.orderId} was not delivered twice`);
    expect(count(calls.items, FIRST.orderId) === 1, `the handler ran ${count(calls.items, FIRST.orderId)}× for it`);
    expect(calls.items.length === 2, `${calls.items.length} handler calls, expected 2`);
    scene.proved('the duplicate was acknowledged without calling the handler: effectively once');
  },
};
