// BentoCache 1.6 for the cache scenario, as its docs set it up: a memory-only store, either with values
// kept as objects (`serialize: false`, like Ferry's L1: a hit costs only the cache's machinery) or with
// the default `serialize: true` (a hit parses the stored JSON), and a tiered store (memory L1 + Redis L2 +
// Redis pub/sub bus) with the default L1. (`serialize: false` cannot be used with an L2 in 1.6.1: an L1
// entry filled from Redis is a string, and reading it back throws "Cannot read properties of undefined
// (reading 'deserialize')" in CacheEntry.fromDriver.)
//
// BentoCache's Redis driver imports `ioredis`, which this install keeps only under bench/ (see
// cache-resolve.mjs); the hook is registered before BentoCache is loaded.
import { register } from 'node:module';

register('./cache-resolve.mjs', import.meta.url);

const { BentoCache, bentostore } = await import('bentocache');
const { memoryDriver } = await import('bentocache/drivers/memory');
const { redisBusDriver, redisDriver } = await import('bentocache/drivers/redis');

/** ioredis connection options for a redis:// URL, TCP_NODELAY on (ioredis's default, stated). */
export function redisOptions(url) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    noDelay: true,
  };
}

/** A memory-only BentoCache; `serialize` false keeps values as objects, true (BentoCache's default) as JSON. */
export function bentoMemory({ serialize }) {
  return new BentoCache({
    default: 'cache',
    stores: { cache: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, serialize })) },
  });
}

/**
 * A tiered BentoCache: memory L1, Redis L2 on `redis` (an ioredis client its caller owns), and a Redis
 * bus (BentoCache opens its own publisher and subscriber connections with `busOptions`). Keys live under
 * `<prefix>:`.
 */
export function bentoTiered({ redis, busOptions, prefix }) {
  return new BentoCache({
    default: 'cache',
    prefix,
    stores: {
      cache: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection: redis }))
        .useBus(redisBusDriver({ connection: busOptions })),
    },
  });
}
