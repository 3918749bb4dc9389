import { inject, injectable } from 'inversify';
import type { Broker, Health } from '@ferry/core';
import { FERRY_BROKER } from '@ferry/core/inversify';
import type { Cache, CacheStats } from '@ferry/invalidation';
import {
  INSTANCE_NAME,
  type Order,
  ORDERS,
  type OrderView,
  type User,
  USER_SOURCE,
  USERS,
  type UserSource,
} from './domain.js';

/**
 * Shows orders with their customer. It never writes users: it reads them through the same `users`
 * namespace as UserService, so a user updated by any UserService instance is evicted here too.
 */
@injectable()
export class OrderService {
  constructor(
    @inject(USERS) private readonly users: Cache<User>,
    @inject(FERRY_BROKER) private readonly broker: Broker,
    @inject(USER_SOURCE) private readonly source: UserSource,
    @inject(ORDERS) private readonly orders: ReadonlyMap<string, Order>,
    @inject(INSTANCE_NAME) readonly name: string,
  ) {}

  async getOrder(id: string): Promise<OrderView | undefined> {
    const order = this.orders.get(id);
    if (order === undefined) return undefined;
    const customer = await this.users.get(order.customerId, (key) => this.source.load(key));
    return customer === undefined ? undefined : { ...order, customer };
  }

  /** What a health endpoint would report: the broker link and the cache's counters. */
  status(): { readonly transport: string; readonly broker: Health; readonly cache: CacheStats } {
    return { transport: this.broker.transport, broker: this.broker.health(), cache: this.users.stats() };
  }
}
