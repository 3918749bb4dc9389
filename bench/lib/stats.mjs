// Statistics and timing helpers shared by every scenario. Everything here is plain arithmetic on numbers
// the scenarios measured; nothing here touches a broker.
import { performance } from 'node:perf_hooks';

/** Median of a list of numbers (the mean of the two middle values for an even count). */
export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile `p` (0–100) of an already sorted list. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50 / p99 / p999 in microseconds of a list of durations in nanoseconds (bigint or number). */
export function latencySummary(samplesNs) {
  const us = Array.from(samplesNs, (v) => Number(v) / 1000).sort((a, b) => a - b);
  return {
    'p50 µs': percentile(us, 50),
    'p99 µs': percentile(us, 99),
    'p999 µs': percentile(us, 99.9),
  };
}

/** High-resolution clock in nanoseconds, as a number (safe for the durations measured here). */
export function nowNs() {
  return Number(process.hrtime.bigint());
}

/** Milliseconds since the process started, for progress lines. */
export function elapsedMs() {
  return performance.now();
}

/**
 * Runs `once` (which returns an object of metrics) `reps` times after `warmup` discarded runs, and returns
 * the per-metric median plus every repetition's value, so the report can show the spread.
 */
export async function repeat({ reps, warmup = 1, once, onRep }) {
  for (let i = 0; i < warmup; i++) await once(-1 - i);
  const runs = [];
  for (let i = 0; i < reps; i++) {
    runs.push(await once(i));
    onRep?.(i);
  }
  const metrics = {};
  for (const key of Object.keys(runs[0])) metrics[key] = median(runs.map((r) => r[key]));
  return { metrics, runs };
}

/** Resolves when `predicate()` is true, polling every `everyMs`; rejects with `what` after `timeoutMs`. */
export async function waitFor(predicate, { timeoutMs = 60_000, everyMs = 5, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A deferred: a promise plus its resolve and reject, for "the last message arrived" conditions. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects `promise` with a clear message if it has not settled within `ms`. */
export async function within(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`bench: ${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A unique name for this run, so queues of different runs never meet. */
export function uniqueName(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** A 1 KiB JSON-able payload: what every end-to-end scenario sends. `JSON.stringify` of it is 1024 bytes. */
export function kibPayload(seq = 0) {
  const base = { id: `m-${seq}`, seq, sentAt: 0, pad: '' };
  const size = Buffer.byteLength(JSON.stringify(base));
  base.pad = 'x'.repeat(1024 - size);
  return base;
}
