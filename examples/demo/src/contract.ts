import { defineEvent, type InferInput } from '@ferry/core';
import { z } from 'zod';

/** The one event of the demo: its CloudEvents type and its schema, checked on publish and on receipt. */
export const OrderPlaced = defineEvent(
  'order.placed',
  z.object({
    orderId: z.string().regex(/^o-\d+$/),
    customer: z.string().min(1),
    total: z.number().positive(),
  }),
);

export type Order = InferInput<typeof OrderPlaced.schema>;

/** The order id in any payload, typed or not (dead letters are read without the contract). */
export function orderIdOf(data: unknown): string {
  const id = typeof data === 'object' && data !== null ? (data as { orderId?: unknown }).orderId : undefined;
  return typeof id === 'string' ? id : '(no order id)';
}

/** `o-1001 ada 12.50`, padded for columns. */
export function describeOrder(order: Order): string {
  return `${order.orderId}  ${order.customer.padEnd(9)} ${order.total.toFixed(2).padStart(7)}`;
}
