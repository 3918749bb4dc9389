import { createHash } from 'node:crypto';
import type { Order } from './contract.js';
import type { ServiceDefinition } from './service.js';

/** Shipping: books a parcel. The tracking number comes from the order id, so it is the same on every instance. */
export const shipping: ServiceDefinition = {
  name: 'shipping',
  handle: (order: Order) => {
    const tracking = createHash('sha256').update(order.orderId).digest('hex').slice(0, 10).toUpperCase();
    const items = order.lines.reduce((sum, line) => sum + line.quantity, 0);
    return `parcel ${tracking} booked for ${order.customer} (${items} item${items === 1 ? '' : 's'})`;
  },
};
