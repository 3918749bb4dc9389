import type { Order } from './contract.js';
import type { ServiceDefinition } from './service.js';

/** Inventory: reserves the ordered stock (here: says what it would reserve). */
export const inventory: ServiceDefinition = {
  name: 'inventory',
  handle: (order: Order) => `reserved ${order.lines.map((line) => `${line.quantity}× ${line.sku}`).join(', ')}`,
};
