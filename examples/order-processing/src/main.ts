/**
 * The order-processing example's command line. Without `--service` it runs the whole story in one
 * process and exits: 0 when every service handled every order exactly once, 1 otherwise. With
 * `--service payment|inventory|shipping` it runs that service's instances until Ctrl-C; with
 * `--service shop` it places orders and exits. The broker URL comes from `--url`, else `FERRY_URL`,
 * else `memory://`; the code is the same on every transport.
 */
import { once } from 'node:events';
import { FerryError } from '@ferry/core';
import { parseArgs, UsageError, USAGE, type Args } from './args.js';
import { ordersTopic, type ServiceName } from './contract.js';
import { Fleet } from './fleet.js';
import { Ledger } from './ledger.js';
import { newRunId, openShop, sampleOrders } from './shop.js';
import { openIdempotencyStore } from './store.js';
import { TourError, runTour } from './tour.js';

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
// `… | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

/** One service's instances, until SIGINT or SIGTERM. */
async function serve(args: Args, service: ServiceName): Promise<void> {
  const store = await openIdempotencyStore({ redis: args.redis, keyPrefix: `order-processing:${args.prefix}:idem:` });
  try {
    const ledger = new Ledger((run) => print(`${run.instance.padEnd(22)} ${run.orderId.padEnd(14)} ${run.outcome}`));
    const fleet = await Fleet.start({
      url: args.url,
      prefix: args.prefix,
      instances: { [service]: args.instances },
      instanceBase: args.instanceBase,
      store: store.store,
      observer: ledger,
    });
    const names = fleet.instances(service).map((i) => i.instance);
    print(`${service}: ${names.join(', ')} on ${fleet.instances(service)[0]?.broker.health().url ?? args.url}`);
    print(`group ${service} of topic ${ordersTopic(args.prefix).name}; idempotency store: ${store.description}`);
    print('waiting for orders; Ctrl-C to stop (the group keeps orders placed while this is down)');
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    print(`stopping ${service}: finishing the order in hand`);
    await fleet.close();
  } finally {
    await store.close();
  }
}

/** Places `args.orders` orders and exits. */
async function placeOrders(args: Args): Promise<void> {
  const shop = await openShop({ url: args.url, prefix: args.prefix });
  try {
    const orders = sampleOrders(newRunId(), args.orders);
    for (const order of orders) {
      await shop.place(order);
      print(`placed ${order.orderId.padEnd(14)} ${order.customer.padEnd(8)} ${order.total.toFixed(2).padStart(7)}`);
    }
    print(`${orders.length} orders on ${ordersTopic(args.prefix).name}, each confirmed by the broker`);
  } finally {
    await shop.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) return print(USAGE);
  if (args.service !== undefined && args.url.startsWith('memory:')) {
    throw new UsageError(
      `--service needs a real broker: ${args.url} lives inside one process. Leave --service out to run everything here`,
    );
  }
  if (args.service === 'shop') return placeOrders(args);
  if (args.service !== undefined) return serve(args, args.service);
  print('Order processing: a shop, and payment, inventory and shipping services');
  await runTour({
    url: args.url,
    prefix: args.prefix,
    orders: args.orders,
    instances: args.instances,
    instanceBase: args.instanceBase,
    redis: args.redis,
    print,
  });
  print('');
  print('Done: every service handled every order exactly once, and everything is closed.');
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    const text =
      error instanceof UsageError
        ? `${error.message}\n\n${USAGE}`
        : error instanceof FerryError
          ? `${error.name} ${error.code}: ${error.message}`
          : error instanceof TourError
            ? error.message
            : String(error instanceof Error ? (error.stack ?? error.message) : error);
    process.stderr.write(`\nOrder processing failed: ${text}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
    // A broker that would not close may hold the event loop open: leave anyway, loudly.
    setTimeout(() => process.exit(process.exitCode), 1_000).unref();
  },
);
