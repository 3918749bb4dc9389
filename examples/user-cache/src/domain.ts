/**
 * The example's data and DI tokens: users, orders that point at users, the system of record the caches
 * load from, and the tokens the services are injected with.
 */
import type { ServiceIdentifier } from 'inversify';
import { cacheToken } from '@ferry/invalidation/inversify';

export interface User {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

export interface Order {
  readonly id: string;
  readonly customerId: string;
  readonly total: number;
}

/** An order with its customer, as OrderService returns it. */
export interface OrderView extends Order {
  readonly customer: User;
}

/** The `users` cache (one namespace, shared by UserService and OrderService). */
export const USERS = cacheToken<User>('users');

/** Where users come from on a cache miss, and where updates are written first: the system of record. */
export interface UserSource {
  load(id: string): Promise<User>;
  update(id: string, changes: Partial<Omit<User, 'id'>>): Promise<User>;
}

/** The system of record's binding. */
export const USER_SOURCE: ServiceIdentifier<UserSource> = Symbol.for('example.UserSource');

/** The orders OrderService knows. */
export const ORDERS: ServiceIdentifier<ReadonlyMap<string, Order>> = Symbol.for('example.Orders');

/** The name of the running instance (`user-service-1`, …). */
export const INSTANCE_NAME: ServiceIdentifier<string> = Symbol.for('example.InstanceName');

export class UnknownUserError extends Error {
  override name = 'UnknownUserError';
}

export const SEED_USERS: readonly User[] = [
  { id: 'u-1', name: 'Ada Lovelace', email: 'ada@example.org' },
  { id: 'u-2', name: 'Grace Hopper', email: 'grace@example.org' },
];

export const SEED_ORDERS: readonly Order[] = [
  { id: 'o-1', customerId: 'u-1', total: 42 },
  { id: 'o-2', customerId: 'u-2', total: 17 },
];

/**
 * An in-process stand-in for the users database. Every instance of the example shares one, as every
 * replica of a real service shares one database. It counts what it is asked, so the summary shows how
 * many reads reached it.
 */
export class UserDatabase implements UserSource {
  readonly #users = new Map<string, User>(SEED_USERS.map((user) => [user.id, user]));
  reads = 0;
  writes = 0;

  load(id: string): Promise<User> {
    this.reads++;
    const user = this.#users.get(id);
    return user === undefined ? Promise.reject(new UnknownUserError(`no user ${id}`)) : Promise.resolve(user);
  }

  update(id: string, changes: Partial<Omit<User, 'id'>>): Promise<User> {
    const user = this.#users.get(id);
    if (user === undefined) return Promise.reject(new UnknownUserError(`no user ${id}`));
    this.writes++;
    const updated: User = { ...user, ...changes, id };
    this.#users.set(id, updated);
    return Promise.resolve(updated);
  }
}
