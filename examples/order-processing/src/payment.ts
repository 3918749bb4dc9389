import type { Order } from './contract.js';
import type { ServiceDefinition } from './service.js';

/** Payment: charges the customer the order's total (here: says what it would charge). */
export const payment: ServiceDefinition = {
  name: 'payment',
  handle: (order: Order) => `charged ${order.customer} ${order.total.toFixed(2)}`,
};
