import { defineEvent, topic, type InferInput, type Topic } from '@ferry/core';
import { z } from 'zod';

/** One line of an order: what, how many, at what unit price. */
const OrderLineSchema = z.object({
  sku: z.string().regex(/^[A-Z0-9-]{1,32}$/),
  quantity: z.number().int().positive(),
  unitPrice: z.number().positive(),
});

/**
 * The event the shop publishes and every service consumes: its CloudEvents type and its schema,
 * checked when the shop publishes (an invalid order is never sent) and again on receipt (one that is
 * invalid anyway goes straight to the group's dead letter, never to a handler).
 */
export const OrderPlaced = defineEvent(
  'order.placed',
  z
    .object({
      orderId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      customer: z.string().min(1).max(100),
      lines: z.array(OrderLineSchema).min(1),
      total: z.number().positive(),
    })
    .refine((order) => Math.abs(order.total - totalOf(order.lines)) < 0.005, {
      message: 'total must be the sum of quantity × unitPrice over the lines',
      path: ['total'],
    }),
);

export type Order = InferInput<typeof OrderPlaced.schema>;
export type OrderLine = z.infer<typeof OrderLineSchema>;

/** The three services. Each one is a subscriber group of its own: every group gets every order. */
export const SERVICE_NAMES = ['payment', 'inventory', 'shipping'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The prefix of the topic when none is given: topic `shop.order.placed`. */
export const DEFAULT_PREFIX = 'shop';

const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/** Checks a prefix: one topic word (letters, digits, `_`, `-`), at most 40 characters. */
export function checkPrefix(prefix: string): string {
  if (!PREFIX.test(prefix)) {
    throw new RangeError(
      `the prefix must be 1-40 letters, digits, '_' or '-', starting with a letter or digit: got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

/**
 * The topic orders are placed on: `<prefix>.order.placed`. A prefix of its own keeps one run (a
 * test, a second shop on the same broker) apart from every other.
 */
export function ordersTopic(prefix: string = DEFAULT_PREFIX): Topic {
  return topic(`${checkPrefix(prefix)}.order.placed`);
}

/**
 * The message id of an order's event. It depends on the order only, so a shop that sends an order
 * again (say, after a lost confirm) sends the same id, and the services' idempotency middleware
 * handles it once.
 */
export function orderMessageId(orderId: string): string {
  return `order-placed-${orderId}`;
}

/** Sum of quantity × unit price, in cents then back, so 0.1 + 0.2 stays 0.30. */
export function totalOf(lines: readonly OrderLine[]): number {
  return lines.reduce((cents, line) => cents + Math.round(line.quantity * line.unitPrice * 100), 0) / 100;
}
