/**
 * Dependency injection for `@ferry/invalidation` (inversify 8): a Redis client token and a module that
 * binds a cache per namespace with the injected broker (`FERRY_BROKER` from `@ferry/core/inversify`) and
 * Redis client. Changing the broker binding changes the transport under the cache, nothing else.
 *
 * @example
 * const USERS = cacheToken<User>('users');
 * container.load(ferryModule({ url }), redisModule({ url: process.env.REDIS_URL }), cacheModule(USERS, { namespace: 'users' }));
 * class UserService { constructor(@inject(USERS) private readonly users: Cache<User>) {} }
 * const service = await container.getAsync(UserService);
 *
 * @packageDocumentation
 * @module @ferry/invalidation/inversify
 */
import { ContainerModule, type ServiceIdentifier } from 'inversify';
import { Redis } from 'ioredis';
import { FERRY_BROKER } from '@ferry/core/inversify';
import { type Cache, createCache } from './cache.js';
import { type CacheOptions, closeRedis } from './options.js';

/** The Redis client the caches use. */
export const FERRY_REDIS: ServiceIdentifier<Redis> = Symbol.for('ferry.Redis');

/** A token for the cache of one namespace. */
export function cacheToken<T>(namespace: string): ServiceIdentifier<Cache<T>> {
  return Symbol.for(`ferry.Cache.${namespace}`);
}

/**
 * Binds {@link FERRY_REDIS}: a client for `url` (default `REDIS_URL`, else `redis://127.0.0.1:6379`),
 * closed when unbound, or an existing `client` (its owner closes it).
 */
export function redisModule(
  options: { readonly url?: string | undefined } | { readonly client: Redis } = {},
): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if ('client' in options) {
      bind(FERRY_REDIS).toConstantValue(options.client);
      return;
    }
    bind(FERRY_REDIS)
      .toDynamicValue(() => new Redis(options.url ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'))
      .inSingletonScope()
      .onDeactivation((client: Redis) => closeRedis(client));
  });
}

/**
 * Binds `token` to a cache (async singleton: resolve with `getAsync`) built from the injected broker and
 * Redis client. Unbinding (`unbindAllAsync`) closes the cache.
 */
export function cacheModule<T>(
  token: ServiceIdentifier<Cache<T>>,
  options: Omit<CacheOptions, 'broker' | 'redis'>,
): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(token)
      .toDynamicValue(async (context) =>
        createCache<T>({
          ...options,
          broker: await context.getAsync(FERRY_BROKER),
          redis: await context.getAsync(FERRY_REDIS),
        }),
      )
      .inSingletonScope()
      .onDeactivation(async (cache: Cache<T>) => {
        await cache.close();
      });
  });
}
