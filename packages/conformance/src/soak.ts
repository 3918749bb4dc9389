import { expect } from 'vitest';
import {
  type Broker,
  type ConsumeMiddleware,
  FerryError,
  idempotency,
  MemoryIdempotencyStore,
  type Queue,
} from '@ferry/core';
import { inParallel, observeFor, uniqueName, waitFor } from './helpers.js';

/** Arguments of {@link runSoak}. */
export interface SoakOptions {
  /** The queue the run goes through (unique per run; the caller deletes it). */
  readonly queue: Queue;
  /** Publishes every message (retrying a typed failure up to 5 times with the same id). */
  readonly publisher: Broker;
  /** Consume the queue, each behind the idempotency middleware with one shared store. */
  readonly consumers: readonly Broker[];
  /** Messages in all. */
  readonly total: number;
  /** Publishes in flight at once. Default 200. */
  readonly inFlight?: number;
  /** Faults, each started when that many messages were handed to the publisher, spread evenly (e.g. at 25, 50, 75 %). */
  readonly faults: ReadonlyArray<() => Promise<void>>;
  /** Messages still waiting in the broker's queue (for the drain check). */
  readonly depth: () => Promise<number>;
  /** How long the run may wait for deliveries after the last publish, ms. Default 120000. */
  readonly waitMs?: number;
}

/** What a soak run counted, Jepsen-style (reliability-anchors §3): nothing is deduplicated away before counting. */
export interface SoakReport {
  /** Messages the run published (`total`). */
  readonly published: number;
  /** Publishes that resolved. */
  readonly confirmed: number;
  /** Publishes that still failed after 5 tries. */
  readonly failedAfterRetries: number;
  /** Publish attempts that failed with a typed error and were tried again (same id). */
  readonly publishRetries: number;
  /** Confirmed messages never delivered. Must be 0. */
  readonly lost: number;
  /** Delivered ids that were never published. Must be 0. */
  readonly unexpected: number;
  /** Extra first-attempt deliveries flagged `redelivered`. */
  readonly flaggedDuplicates: number;
  /** Extra first-attempt deliveries not flagged: resends of publishes in doubt, each with an id already delivered. */
  readonly unflaggedDuplicates: number;
  /** Messages whose handler ran more than once behind the idempotency middleware. Must be 0. */
  readonly handlerDuplicates: number;
  /** Publishes in flight at once, and faults run: they bound the unflagged duplicates. */
  readonly inFlight: number;
  /** Faults run. */
  readonly faults: number;
  /** `disconnected` events the publisher and consumers reported: proof the faults reached them. */
  readonly disconnects: number;
  /** From the first publish until every publish settled and every fault finished, ms. */
  readonly publishMs: number;
  /** `published` per second of `publishMs`: the publish rate, outages included. */
  readonly msgPerSecond: number;
}

/**
 * Publishes `total` messages at full speed through `faults`, then waits until every confirmed message was
 * handled and the queue drained, and reports lost, unexpected, duplicated and handler-duplicated
 * messages. Every delivery is recorded before the idempotency middleware, so duplicates are counted,
 * not hidden (Watermill de-duplicates before asserting; this does not).
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const { queue, publisher, consumers, total, faults } = options;
  const inFlight = options.inFlight ?? 200;
  const waitMs = options.waitMs ?? 120_000;
  const run = uniqueName('soak');
  const deliveries = new Map<string, number>();
  const handled = new Map<string, number>();
  let flaggedDuplicates = 0;
  let unflaggedDuplicates = 0;
  const record: ConsumeMiddleware = async (ctx, next) => {
    const { id, redelivered, attempt } = ctx.message;
    if (attempt === 1) {
      const seen = deliveries.get(id) ?? 0;
      if (seen > 0) {
        if (redelivered) flaggedDuplicates++;
        else unflaggedDuplicates++;
      }
      deliveries.set(id, seen + 1);
    }
    await next();
  };
  let disconnects = 0;
  for (const broker of [publisher, ...consumers]) broker.on('disconnected', () => void disconnects++);
  const store = new MemoryIdempotencyStore();
  for (const broker of consumers) {
    await broker
      .consumer({ middleware: [record, idempotency({ store })] })
      .subscribe(queue, (m) => void handled.set(m.id, (handled.get(m.id) ?? 0) + 1), {
        concurrency: 50,
        retry: { maxAttempts: 20, initialDelayMs: 20, maxDelayMs: 500 },
      });
  }
  const producer = publisher.producer();
  const ok = new Set<string>();
  let publishRetries = 0;
  let failed = 0;
  const running: Promise<void>[] = [];
  const at = new Map(faults.map((fault, i) => [Math.floor((total * (i + 1)) / (faults.length + 1)), fault]));
  const started = Date.now();
  await inParallel(total, inFlight, async (n) => {
    const fault = at.get(n);
    if (fault !== undefined) running.push(fault());
    const id = `${run}-${n}`;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        await producer.publish(queue, { type: 'ferry.soak', id, data: { n } });
        ok.add(id);
        return;
      } catch (error) {
        if (!(error instanceof FerryError)) throw error;
        publishRetries++;
      }
    }
    failed++;
  });
  await Promise.all(running);
  const publishMs = Date.now() - started;
  await waitFor(
    () => [...ok].every((id) => handled.has(id)),
    waitMs,
    () => {
      const missing = [...ok].filter((id) => !handled.has(id));
      return `every confirmed message to be handled (${missing.length} missing, e.g. ${missing.slice(0, 3).join(', ')})`;
    },
  );
  await waitFor(async () => (await options.depth()) === 0, 30_000, 'the queue to drain');
  // Late copies (redeliveries of messages already handled) may still be on their way: watch until quiet.
  let count = -1;
  await waitFor(
    async () => {
      const before = count;
      await observeFor(500);
      count = [...deliveries.values()].reduce((a, b) => a + b, 0);
      return count === before;
    },
    30_000,
    'deliveries to stop',
  );
  return {
    published: total,
    confirmed: ok.size,
    failedAfterRetries: failed,
    publishRetries,
    lost: [...ok].filter((id) => !deliveries.has(id)).length,
    unexpected: [...deliveries.keys()].filter((id) => !id.startsWith(`${run}-`)).length,
    flaggedDuplicates,
    unflaggedDuplicates,
    handlerDuplicates: [...handled.values()].filter((c) => c > 1).length,
    inFlight,
    faults: faults.length,
    disconnects,
    publishMs,
    msgPerSecond: Math.round((total / publishMs) * 1000),
  };
}

/** The soak size: `FERRY_SOAK_MESSAGES`, else 20,000 in the full profile and 2,000 otherwise. */
export function soakSize(env: NodeJS.ProcessEnv = process.env): number {
  const explicit = env['FERRY_SOAK_MESSAGES'];
  if (explicit !== undefined) return Number(explicit);
  return env['FERRY_CONFORMANCE'] === 'full' ? 20_000 : 2_000;
}

/**
 * The soak's pass criteria: the faults reached the brokers (at least one `disconnected` per fault),
 * nothing confirmed was lost, nothing unexpected arrived, every publish eventually resolved, the
 * idempotent handler saw no duplicate, and unflagged duplicates stay within what in-doubt resends can
 * make (each fault can leave at most `inFlight` publishes in doubt).
 */
export function expectSoakPassed(report: SoakReport): void {
  expect(report.disconnects, 'disconnected events (proof the faults landed)').toBeGreaterThanOrEqual(report.faults);
  expect(report.lost, 'confirmed messages never delivered').toBe(0);
  expect(report.unexpected, 'deliveries of messages never published').toBe(0);
  expect(report.failedAfterRetries, 'publishes that never resolved').toBe(0);
  expect(report.handlerDuplicates, 'handler runs past the idempotency middleware').toBe(0);
  expect(report.unflaggedDuplicates).toBeLessThanOrEqual(report.publishRetries + report.inFlight * report.faults);
}
