import { Redis } from 'ioredis';

/** How long the probe may take in all (connect, then PING), ms: without Redis the demo moves on at once. */
export const REDIS_PROBE_MS = 1_000;

/** The Redis URL: `REDIS_URL`, else the local default (the user-cache example reads the same). */
export function redisUrl(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['REDIS_URL'];
  return fromEnv === undefined || fromEnv === '' ? 'redis://127.0.0.1:6379' : fromEnv;
}

/** What the probe found: a connected client, or why there is none. `address` never holds credentials. */
export type RedisProbe =
  | { readonly ok: true; readonly address: string; readonly client: Redis }
  | { readonly ok: false; readonly address: string; readonly reason: string };

/**
 * Connects to Redis and sends a PING, all within `timeoutMs`, without retrying. It never throws: a Redis
 * that is missing, refuses, does not answer or is not a Redis comes back as `ok: false` with the reason.
 * The caller closes the client of a successful probe with {@link closeRedis}.
 */
export async function probeRedis(url: string, timeoutMs = REDIS_PROBE_MS): Promise<RedisProbe> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, address: '(unparsable)', reason: 'REDIS_URL is not a URL' };
  }
  const address = `${parsed.hostname}:${parsed.port || '6379'}`;
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return { ok: false, address, reason: `REDIS_URL must start with redis:// or rediss://, not ${parsed.protocol}//` };
  }
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    disconnectTimeout: 100, // a server that never closes its end holds the process this long, not 2 s
  });
  let last: string | undefined;
  client.on('error', (error: Error) => (last ??= error.message)); // reported below, in one line
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
      }),
    ]);
    return { ok: true, address, client };
  } catch (error) {
    drop(client);
    const reason = last ?? (error instanceof Error ? error.message : String(error));
    return { ok: false, address, reason: reason === '' ? 'no reason given' : reason };
  } finally {
    clearTimeout(timer);
  }
}

/** Deletes the keys matching `pattern` (SCAN, then DEL); returns how many it deleted. */
export async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length > 0) deleted += await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

/** QUIT when connected, else drop the connection: ioredis's quit() would wait for a reconnect. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => drop(client));
  else drop(client);
}

/**
 * Drops the connection unless it already ended. ioredis's disconnect() on a connection that already
 * ended (refused, reset) arms a 2 s timer for a stream that closed long ago, and the process waits for it.
 */
function drop(client: Redis): void {
  if (client.status !== 'end') client.disconnect();
}
