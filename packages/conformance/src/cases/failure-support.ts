import type { CaseContext } from '../types.js';
import {
  type Consumer,
  deadLetterQueueName,
  defineEvent,
  type ErrorCodeValue,
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_TIME,
  type Headers,
  type Message,
  type OutgoingMessage,
  queue,
  type Queue,
  type Topic,
} from '@ferry/core';
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { type Tally } from '../helpers.js';
import { TEST_TYPE } from './common.js';

/**
 * What the failure cases share: dead-letter watching and checks, a hand-made Standard Schema, counters.
 */

/** The CloudEvents `source` of what these cases publish, to check it survives into the dead letter. */
export const SOURCE = 'ferry-conformance-failure';
/** A fixed `time`, to check it survives into the dead letter. */
export const TIME = '2026-03-04T05:06:07.890Z';
/** The five headers core adds to a dead letter. */
export const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_TIME,
]);

/** A short unique suffix for message ids. */
export function run(): string {
  return randomUUID().slice(0, 8);
}

/** Adds one to a counter in a map. */
export function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/**
 * Collects what arrives on the dead-letter queue of a subscription to `from` (with `group`), as any
 * application would read it: `queue(deadLetterQueueName(from, group))`. Subscribe it before anything can
 * fail, so the queue exists on brokers that only keep messages for known subscriptions.
 */
export async function watchDeadLetters<T = unknown>(
  consumer: Consumer,
  from: Queue | Topic,
  options: { readonly group?: string; readonly decode?: boolean } = {},
): Promise<Message<T>[]> {
  const dead: Message<T>[] = [];
  await consumer.subscribe<T>(queue(deadLetterQueueName(from, options.group)), (m) => void dead.push(m), {
    decode: options.decode ?? true,
  });
  return dead;
}

/** A dead letter's headers without the five core adds: what the application sent. */
export function applicationPart(headers: Headers): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !DEAD_LETTER_HEADERS.has(name)));
}

/** Dead letters, as `id: code (reason)` lines, for assertions that must find none. */
export function describeDead(dead: ReadonlyArray<Message<unknown>>): string[] {
  return dead.map((d) => `${d.id}: ${d.headers[HEADER_DEAD_LETTER_CODE]} (${d.headers[HEADER_DEAD_LETTER_REASON]})`);
}

export interface DeadLetterExpectation {
  readonly code: ErrorCodeValue;
  readonly attempts: number;
  readonly origin: string;
  /** `Date.now()` before the message was published. */
  readonly since: number;
  /** Text the reason must contain. */
  readonly reason?: string;
}

/** Checks the dead-letter headers a DLQ reader sees in `message.headers`. */
export function expectDeadLetter(dead: Message<unknown>, expected: DeadLetterExpectation): void {
  const h = dead.headers;
  const label = `dead letter ${dead.id}`;
  expect(h[HEADER_DEAD_LETTER_CODE], label).toBe(expected.code);
  expect(h[HEADER_DEAD_LETTER_ATTEMPTS], label).toBe(String(expected.attempts));
  expect(h[HEADER_DEAD_LETTER_ORIGIN], label).toBe(expected.origin);
  expect(h[HEADER_DEAD_LETTER_REASON], label).toEqual(expect.any(String));
  expect(h[HEADER_DEAD_LETTER_REASON]?.length, label).toBeGreaterThan(0);
  if (expected.reason !== undefined) expect(h[HEADER_DEAD_LETTER_REASON], label).toContain(expected.reason);
  expect(h[HEADER_ATTEMPT], label).toBeUndefined();
  const time = h[HEADER_DEAD_LETTER_TIME] ?? '';
  expect(time, label).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  const at = Date.parse(time);
  // Written by the consumer in this process, so this process's clock (1 s of slack for clock adjustments).
  expect(at, `${label}: ${HEADER_DEAD_LETTER_TIME} ${time}`).toBeGreaterThanOrEqual(expected.since - 1_000);
  expect(at, `${label}: ${HEADER_DEAD_LETTER_TIME} ${time}`).toBeLessThanOrEqual(Date.now() + 1_000);
}

/** Checks that a received message carries the attributes and data of `sent` (published with {@link SOURCE}). */
export function expectSameMessage(received: Message<unknown>, sent: OutgoingMessage): void {
  expect(received.id).toBe(sent.id);
  expect(received.type).toBe(sent.type);
  expect(received.source).toBe(SOURCE);
  expect(received.subject).toBe(sent.subject);
  expect(received.key).toBe(sent.key);
  if (sent.time !== undefined) expect(received.time).toBe(sent.time);
  expect(received.data).toEqual(sent.data);
}

/** Waits until `tally` holds every id of `ids`; on timeout the error names what is missing. */
export async function waitForAll(
  ctx: CaseContext,
  tally: Tally,
  ids: ReadonlySet<string>,
  what: string,
): Promise<void> {
  try {
    await ctx.waitFor(() => tally.hasAll(ids), what);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}: ${tally.distinct} of ${ids.size} arrived; first missing: ${tally.missing(ids).join(', ')}`,
      {
        cause: error,
      },
    );
  }
}

// A hand-made Standard Schema v1 (the suite does not depend on a schema library): accepts `{ n: number }`.
export interface Counted {
  readonly n: number;
}
type CountedResult = { readonly value: Counted } | { readonly issues: ReadonlyArray<CountedIssue> };
export interface CountedIssue {
  readonly message: string;
  readonly path: readonly PropertyKey[];
}
/** The issue message of {@link countedSchema}. */
export const COUNTED_ISSUE = 'n must be a finite number';
export const countedSchema = {
  '~standard': {
    version: 1 as const,
    vendor: 'ferry-conformance',
    validate(value: unknown): CountedResult {
      const n = typeof value === 'object' && value !== null ? (value as { n?: unknown }).n : undefined;
      return typeof n === 'number' && Number.isFinite(n)
        ? { value: { n } }
        : { issues: [{ message: COUNTED_ISSUE, path: ['n'] }] };
    },
    types: undefined as { readonly input: Counted; readonly output: Counted } | undefined,
  },
};
/** The event contract the contract cases subscribe with. */
export const CountedEvent = defineEvent(`${TEST_TYPE}.counted`, countedSchema);
/** A type no contract of these cases accepts. */
export const OTHER_TYPE = `${TEST_TYPE}.other`;
