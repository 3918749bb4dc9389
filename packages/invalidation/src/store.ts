import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCode, FerryError } from '@ferry/core';

/**
 * The cache's L2 on Redis. Every write takes a per-key version from Redis atomically with the write
 * (one Lua script: INCR the key's version, SET the value), so versions order writes without clocks.
 *
 * Keys, under `ferry:cache:<namespace>:`:
 * - `v:<key>`: the value, stored as `<version>|<encoded bytes>`, with the entry's TTL;
 * - `n:<key>`: the key's version counter. It outlives values (its TTL is refreshed on every write), so
 *   a version never goes back while some instance may still hold an older one;
 * - `t:<tag>`: the keys written with that tag.
 * The tag script computes key names inside Lua: a single Redis (or one hash slot), not a cluster.
 */

/** A value read from L2: its version, and its encoded bytes (absent when the key holds none). */
export interface Versioned {
  readonly version: number;
  readonly bytes: Buffer | undefined;
}

/** Wraps a Redis failure as `FERRY_CACHE_STORE`. */
export function storeError(what: string, cause: unknown): FerryError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new FerryError(ErrorCode.CACHE_STORE, `Redis failed to ${what}: ${reason}`, { cause });
}

const WRITE = `
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], v .. '|' .. ARGV[1], 'PX', ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return v`;

const DELETE = `
local out = {}
for i = 1, #KEYS, 2 do
  local v = redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
  redis.call('DEL', KEYS[i])
  out[#out + 1] = v
end
return out`;

const READ = `
return { redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) }`;

const FILL = `
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current ~= tonumber(ARGV[1]) or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1`;

const TAG = `
local keys = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, key in ipairs(keys) do
  local v = redis.call('INCR', ARGV[1] .. 'n:' .. key)
  redis.call('PEXPIRE', ARGV[1] .. 'n:' .. key, ARGV[2])
  redis.call('DEL', ARGV[1] .. 'v:' .. key)
  out[#out + 1] = key
  out[#out + 1] = v
end
redis.call('DEL', KEYS[1])
return out`;

/** A Lua script run by SHA, loaded on first use (and again after a Redis restart: NOSCRIPT). */
class Script {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | Buffer | number>): Promise<unknown> {
    try {
      return await redis.callBuffer('EVALSHA', [this.#sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.callBuffer('EVAL', [this.#source, keys.length, ...keys, ...args]);
    }
  }
}

const scripts = {
  write: new Script(WRITE),
  delete: new Script(DELETE),
  read: new Script(READ),
  fill: new Script(FILL),
  tag: new Script(TAG),
};

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value)) return Number(value.toString());
  return Number(value);
}

/** Splits a stored `<version>|<bytes>` value. */
function parseStored(raw: Buffer): Versioned {
  const bar = raw.indexOf(0x7c);
  return { version: Number(raw.subarray(0, bar).toString()), bytes: raw.subarray(bar + 1) };
}

/** The L2 operations of one namespace. */
export class Store {
  readonly prefix: string;
  readonly #redis: Redis;
  /** TTL of version counters and tag sets, ms: longer than any value or L1 entry lives. */
  readonly #versionTtlMs: number;

  constructor(redis: Redis, namespace: string, versionTtlMs: number) {
    this.#redis = redis;
    this.prefix = `ferry:cache:${namespace}:`;
    this.#versionTtlMs = versionTtlMs;
  }

  #value(key: string): string {
    return `${this.prefix}v:${key}`;
  }

  #version(key: string): string {
    return `${this.prefix}n:${key}`;
  }

  /** Reads a value and the key's current version in one round trip. @throws FERRY_CACHE_STORE */
  async read(key: string): Promise<Versioned> {
    let result: unknown;
    try {
      result = await scripts.read.run(this.#redis, [this.#value(key), this.#version(key)], []);
    } catch (error) {
      throw storeError(`read "${key}"`, error);
    }
    const [raw, version] = result as [Buffer | null, Buffer | null];
    if (raw !== null) return parseStored(raw);
    return { version: version === null ? 0 : toNumber(version), bytes: undefined };
  }

  /** Writes a value under a new version (and records its tags). @returns the version. @throws FERRY_CACHE_STORE */
  async write(key: string, bytes: Uint8Array, ttlMs: number, tags: readonly string[]): Promise<number> {
    try {
      const version = await scripts.write.run(
        this.#redis,
        [this.#value(key), this.#version(key), ...tags.map((tag) => `${this.prefix}t:${tag}`)],
        [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), ttlMs, this.#versionTtlMs, key],
      );
      return toNumber(version);
    } catch (error) {
      throw storeError(`write "${key}"`, error);
    }
  }

  /**
   * Stores a loaded value only if nothing was written since `version` was read (and no value is there):
   * a load that raced with a write never puts the older value into L2. @returns whether it was stored.
   */
  async fill(key: string, version: number, bytes: Uint8Array, ttlMs: number): Promise<boolean> {
    try {
      const stored = await scripts.fill.run(
        this.#redis,
        [this.#value(key), this.#version(key)],
        [version, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), ttlMs],
      );
      return toNumber(stored) === 1;
    } catch (error) {
      throw storeError(`fill "${key}"`, error);
    }
  }

  /** Deletes values under new versions. @returns each key's new version. @throws FERRY_CACHE_STORE */
  async delete(keys: readonly string[]): Promise<Array<[string, number]>> {
    if (keys.length === 0) return [];
    try {
      const versions = (await scripts.delete.run(
        this.#redis,
        keys.flatMap((key) => [this.#value(key), this.#version(key)]),
        [this.#versionTtlMs],
      )) as unknown[];
      return keys.map((key, i) => [key, toNumber(versions[i])]);
    } catch (error) {
      throw storeError(`delete ${keys.length} key(s)`, error);
    }
  }

  /** Deletes every value written with `tag` under new versions. @returns the keys and versions. */
  async deleteTag(tag: string): Promise<Array<[string, number]>> {
    try {
      const flat = (await scripts.tag.run(
        this.#redis,
        [`${this.prefix}t:${tag}`],
        [this.prefix, this.#versionTtlMs],
      )) as unknown[];
      const out: Array<[string, number]> = [];
      for (let i = 0; i < flat.length; i += 2) out.push([String(flat[i]), toNumber(flat[i + 1])]);
      return out;
    } catch (error) {
      throw storeError(`invalidate tag "${tag}"`, error);
    }
  }

  /** Deletes every value and tag set of the namespace (version counters stay: they must not go back). */
  async clear(): Promise<void> {
    try {
      for (const pattern of [`${this.prefix}v:*`, `${this.prefix}t:*`]) {
        let cursor = '0';
        do {
          const [next, keys] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await this.#redis.unlink(...keys);
        } while (cursor !== '0');
      }
    } catch (error) {
      throw storeError('clear the namespace', error);
    }
  }
}
