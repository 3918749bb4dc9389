import { inject, injectable } from 'inversify';
import type { Broker, Health } from '@ferry/core';
import { FERRY_BROKER } from '@ferry/core/inversify';
import type { Cache, CacheStats } from '@ferry/invalidation';
import { INSTANCE_NAME, type User, USER_SOURCE, USERS, type UserSource } from './domain.js';

/**
 * Reads users through the shared `users` cache (L1 → Redis → the database) and writes them: the database
 * first, then `cache.set`, which writes Redis under a new version and publishes the invalidation that
 * makes every instance of every service on the namespace evict its older copy.
 */
@injectable()
export class UserService {
  constructor(
    @inject(USERS) private readonly users: Cache<User>,
    @inject(FERRY_BROKER) private readonly broker: Broker,
    @inject(USER_SOURCE) private readonly source: UserSource,
    @inject(INSTANCE_NAME) readonly name: string,
  ) {}

  getUser(id: string): Promise<User | undefined> {
    return this.users.get(id, (key) => this.source.load(key));
  }

  async updateUser(id: string, changes: Partial<Omit<User, 'id'>>): Promise<User> {
    const updated = await this.source.update(id, changes); // the system of record first
    await this.users.set(id, updated); // then Redis (new version) and the invalidation
    return updated;
  }

  /** What a health endpoint would report: the broker link and the cache's counters. */
  status(): { readonly transport: string; readonly broker: Health; readonly cache: CacheStats } {
    return { transport: this.broker.transport, broker: this.broker.health(), cache: this.users.stats() };
  }
}
