import type { ConnectOptions } from '@ferry/core';
import { DEFAULT_PREFIX, ordersTopic, SERVICE_NAMES, type Order, type ServiceName } from './contract.js';
import { Fleet } from './fleet.js';
import { Ledger } from './ledger.js';
import type { Handled } from './service.js';
import { newRunId, openShop, sampleOrders, type Shop } from './shop.js';
import { openIdempotencyStore } from './store.js';

/** How long any one wait of the tour may take, ms: generous, so a real broker fits too. */
export const WAIT_MS = 15_000;

/** Options of {@link runTour}. */
export interface TourOptions {
  readonly url: string;
  readonly prefix?: string;
  /** Orders of the first round (the second, while shipping is down, has half as many). Default 6. */
  readonly orders?: number;
  /** Instances per service. Default 2. */
  readonly instances?: number;
  /** The first part of the instance names. Default: the prefix. */
  readonly instanceBase?: string;
  /** `'off'`: the in-process idempotency store even when Redis answers. */
  readonly redis?: 'auto' | 'off';
  readonly connectOptions?: ConnectOptions;
  /** Where the narration goes, one line per call. */
  readonly print: (line: string) => void;
}

/** What the tour found: per service, handler runs per order and per instance. */
export interface TourReport {
  readonly orders: readonly string[];
  readonly services: Readonly<Record<ServiceName, { runs: number; shares: Record<string, number> }>>;
}

/** An expectation of the tour that did not hold. */
export class TourError extends Error {
  override name = 'TourError';
}

/**
 * The whole story in one process: the services start (several instances each), the shop places
 * orders, sends one again, shipping goes down while more orders come in, and comes back to catch up.
 * Every service must have handled every order exactly once; otherwise it throws a {@link TourError}.
 */
export async function runTour(options: TourOptions): Promise<TourReport> {
  const { url, print } = options;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const count = options.orders ?? 6;
  const instances = options.instances ?? 2;
  const storeHandle = await openIdempotencyStore({
    redis: options.redis ?? 'auto',
    keyPrefix: `order-processing:${prefix}:idem:`,
  });
  const ledger = new Ledger((run: Handled) =>
    print(`    ${run.instance.padEnd(22)} ${run.orderId.padEnd(14)} ${run.outcome}`),
  );
  const topicName = ordersTopic(prefix).name;
  const extra = options.connectOptions === undefined ? {} : { connectOptions: options.connectOptions };
  let fleet: Fleet | undefined;
  let shop: Shop | undefined;
  try {
    print(`idempotency store: ${storeHandle.description}`);
    fleet = await Fleet.start({
      url,
      prefix,
      instances: { payment: instances, inventory: instances, shipping: instances },
      store: storeHandle.store,
      observer: ledger,
      ...(options.instanceBase === undefined ? {} : { instanceBase: options.instanceBase }),
      ...extra,
    });
    shop = await openShop({ url, prefix, ...extra });
    print(`broker: ${shop.broker.health().url} (transport: ${shop.broker.transport})`);
    print(`topic ${topicName}; groups ${SERVICE_NAMES.join(', ')}, ${instances} instance(s) each`);

    const runId = newRunId();
    const first = sampleOrders(runId, count);
    print('');
    print(`1. The shop places ${count} orders; every service gets each one, its instances share them`);
    await placeAll(shop, first);
    await ledger.handledAll(SERVICE_NAMES, first.map(idOf), WAIT_MS);

    const again = first[0];
    if (again !== undefined) {
      print('');
      print(`2. The shop sends ${again.orderId} again, with the same message id (a retry after a lost confirm)`);
      await shop.place(again);
      await ledger.until(
        () => SERVICE_NAMES.every((s) => ledger.deliveries(s, again.orderId) >= 2),
        WAIT_MS,
        () => `every service to receive ${again.orderId} a second time`,
      );
      const reran = SERVICE_NAMES.filter((s) => ledger.runs(s, again.orderId) !== 1);
      if (reran.length > 0) throw new TourError(`${reran.join(', ')} ran the handler again for the duplicate`);
      print('    every service received it and acknowledged it without running its handler (idempotency())');
    }

    const second = sampleOrders(runId, Math.max(1, Math.ceil(count / 2)), count + 1);
    print('');
    print(`3. Shipping goes down (its instances close); the shop places ${second.length} more orders`);
    await fleet.stopService('shipping');
    await placeAll(shop, second);
    await ledger.handledAll(['payment', 'inventory'], second.map(idOf), WAIT_MS);
    const early = second.filter((order) => ledger.runs('shipping', order.orderId) > 0).length;
    print(`    payment and inventory handled them; shipping, down, handled ${early}: its group keeps them`);

    print('');
    print('4. Shipping comes back under the same instance names and catches up');
    await fleet.startService('shipping');
    await ledger.handledAll(['shipping'], second.map(idOf), WAIT_MS);

    const orders = [...first, ...second].map(idOf);
    return report(ledger, orders, print);
  } finally {
    await shop?.close().catch(() => undefined);
    await fleet?.close().catch(() => undefined);
    await storeHandle.close();
  }
}

function idOf(order: Order): string {
  return order.orderId;
}

async function placeAll(shop: { place(order: Order): Promise<void> }, orders: readonly Order[]): Promise<void> {
  for (const order of orders) await shop.place(order);
}

function report(ledger: Ledger, orders: readonly string[], print: (line: string) => void): TourReport {
  print('');
  print('Summary: handler runs per service (each order exactly once), and who ran them');
  const services = {} as Record<ServiceName, { runs: number; shares: Record<string, number> }>;
  for (const service of SERVICE_NAMES) {
    const wrong = orders.filter((id) => ledger.runs(service, id) !== 1);
    if (wrong.length > 0) {
      const detail = wrong.map((id) => `${id} ×${ledger.runs(service, id)}`).join(', ');
      throw new TourError(`${service} did not handle every order exactly once: ${detail}`);
    }
    const shares = ledger.shares(service);
    services[service] = { runs: orders.length, shares };
    const split = Object.entries(shares)
      .map(([instance, n]) => `${instance} ${n}`)
      .join(', ');
    print(
      `    ${service.padEnd(10)} ${String(orders.length).padStart(3)} of ${orders.length} orders, each once   (${split})`,
    );
  }
  return { orders, services };
}
