import { formatSummary, runScenario, UPDATED_USER } from '@ferry/example-user-cache';
import { closeRedis, deleteKeys, probeRedis, REDIS_PROBE_MS, redisUrl } from '../redis.js';
import type { Chapter } from '../scene.js';
import { paint } from '../style.js';
import { expect, failureOf } from '../wait.js';

/** Chapter 6: the user-cache example's scenario, on the demo's broker and the Redis at `REDIS_URL`. */
export const userCache: Chapter = {
  title: 'A users cache shared by four instances, kept fresh by invalidations',
  async run(scene) {
    const { say, relay } = scene;
    const url = redisUrl();
    const probe = await probeRedis(url, REDIS_PROBE_MS);
    if (!probe.ok) {
      say(
        paint.warn(
          `skipped: no Redis answered PING at ${probe.address} within ${REDIS_PROBE_MS} ms (${probe.reason}); the cache's second tier needs one (REDIS_URL)`,
        ),
      );
      return;
    }
    const namespace = `demo-${scene.run}`;
    say(`runScenario() from @ferry/example-user-cache, namespace "${namespace}" (new on every run)`);
    try {
      let result;
      try {
        result = await runScenario({ url: scene.url, redisUrl: url, namespace, log: relay });
      } catch (error) {
        throw failureOf('the user-cache scenario', error);
      }
      relay(formatSummary(result));
      const reads = result.after.filter((read) => read.userId === UPDATED_USER);
      const stale = reads.filter((read) => read.user.name !== result.update.after.name);
      expect(reads.length > 0 && stale.length === 0, `${stale.length} reads after the update returned the old user`);
      const evicted = result.instances.filter((instance) => instance.stats.invalidations.evicted > 0).length;
      scene.proved(
        `after one update, all ${reads.length} reads of ${UPDATED_USER} saw it; ${evicted} instances evicted their copy, the writer kept its own`,
      );
    } finally {
      // The example leaves its keys to expire (in an hour); this run's namespace is of no use to anyone.
      try {
        const deleted = await deleteKeys(probe.client, `ferry:cache:${namespace}:*`);
        say(`deleted this run's ${deleted} Redis keys (ferry:cache:${namespace}:*)`);
      } catch (error) {
        say(
          `could not delete the Redis keys ferry:cache:${namespace}:* (they expire within an hour): ${String(error)}`,
        );
      } finally {
        await closeRedis(probe.client);
      }
    }
  },
};
