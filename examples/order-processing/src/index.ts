/**
 * The order-processing example as a library: the contract, the shop, the services and the tour the
 * command line runs, so tests (and other programs) can run them in-process.
 */
export {
  OrderPlaced,
  SERVICE_NAMES,
  DEFAULT_PREFIX,
  checkPrefix,
  ordersTopic,
  orderMessageId,
  totalOf,
} from './contract.js';
export type { Order, OrderLine, ServiceName } from './contract.js';
export { startServiceInstance, CLAIM_TTL_MS, RETRY } from './service.js';
export type {
  ServiceDefinition,
  ServiceInstance,
  ServiceInstanceOptions,
  ServiceObserver,
  Delivered,
  Handled,
} from './service.js';
export { payment } from './payment.js';
export { inventory } from './inventory.js';
export { shipping } from './shipping.js';
export { Fleet, SERVICES, instanceName } from './fleet.js';
export type { FleetOptions } from './fleet.js';
export { openShop, sampleOrder, sampleOrders, newRunId } from './shop.js';
export type { Shop, ShopOptions } from './shop.js';
export { openIdempotencyStore, defaultRedisUrl } from './store.js';
export type { StoreHandle, StoreOptions } from './store.js';
export { Ledger } from './ledger.js';
export { runTour, TourError, WAIT_MS } from './tour.js';
export type { TourOptions, TourReport } from './tour.js';
