import { randomBytes } from 'node:crypto';
import { connect, type Broker, type ConnectOptions, type Producer } from '@ferry/core';
import { DEFAULT_PREFIX, OrderPlaced, orderMessageId, ordersTopic, totalOf, type Order } from './contract.js';

/** Options of {@link openShop}. */
export interface ShopOptions {
  /** The broker URL. */
  readonly url: string;
  /** The topic prefix (default `shop`). */
  readonly prefix?: string;
  /** More `connect()` options. */
  readonly connectOptions?: ConnectOptions;
}

/** The web shop: it places orders and knows nothing of who handles them. */
export interface Shop {
  readonly broker: Broker;
  /**
   * Publishes `order.placed`: validated against the schema first (an invalid order throws a
   * `ValidationError` and nothing is sent), resolved once the broker has it. Placing the same order
   * again sends the same message id.
   */
  place(order: Order): Promise<void>;
  /** Waits for pending publishes, then closes the connection. */
  close(): Promise<void>;
}

/** Connects the shop. */
export async function openShop(options: ShopOptions): Promise<Shop> {
  const broker = await connect(options.url, { source: 'order-processing/shop', ...options.connectOptions });
  const producer: Producer = broker.producer();
  const orders = ordersTopic(options.prefix ?? DEFAULT_PREFIX);
  return {
    broker,
    place: (order) =>
      producer.publish(
        orders,
        OrderPlaced.create(order, { id: orderMessageId(order.orderId), subject: order.orderId }),
      ),
    close: () => broker.close(),
  };
}

const CUSTOMERS = ['ada', 'alan', 'grace', 'edsger', 'barbara', 'donald', 'frances'] as const;
const CATALOGUE = [
  { sku: 'MUG-01', unitPrice: 9.5 },
  { sku: 'TEE-M', unitPrice: 19.9 },
  { sku: 'BOOK-7', unitPrice: 32 },
  { sku: 'PEN-3', unitPrice: 2.4 },
  { sku: 'CAP-02', unitPrice: 14 },
] as const;

/** A short random id for one run of the shop, so each run's orders are new ones (`o-3fa9c1-1`, …). */
export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

/** Order number `n` of a run: a fixed mix of customers and lines, so runs look alike. */
export function sampleOrder(runId: string, n: number): Order {
  const customer = CUSTOMERS[n % CUSTOMERS.length] ?? 'ada';
  const lines = Array.from({ length: 1 + (n % 3) }, (_, i) => {
    const item = CATALOGUE[(n + 2 * i) % CATALOGUE.length] ?? CATALOGUE[0];
    return { sku: item.sku, quantity: 1 + ((n + i) % 2), unitPrice: item.unitPrice };
  });
  return { orderId: `o-${runId}-${n}`, customer, lines, total: totalOf(lines) };
}

/** Orders `from` … `from + count - 1` of a run. */
export function sampleOrders(runId: string, count: number, from = 1): Order[] {
  return Array.from({ length: count }, (_, i) => sampleOrder(runId, from + i));
}
