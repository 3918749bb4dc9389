import type { CaseContext, ConformanceCase } from '../types.js';
import {
  deadLetterQueueName,
  describeDestination,
  ErrorCode,
  type Message,
  type OutgoingMessage,
  PermanentError,
  queue,
} from '@ferry/core';
import { expect } from 'vitest';
import { observeFor } from '../helpers.js';
import { fastRetry, TEST_TYPE } from './common.js';
import {
  SOURCE,
  TIME,
  run,
  watchDeadLetters,
  applicationPart,
  describeDead,
  expectDeadLetter,
  expectSameMessage,
} from './failure-support.js';

function poisonMessage(label: string): OutgoingMessage {
  return {
    type: TEST_TYPE,
    id: `poison-${label}-${run()}`,
    subject: `subject-${label}`,
    key: `key-${label}`,
    time: TIME,
    data: { n: 1, text: `poison ${label}`, nested: { list: [1, 'two', null] } },
    headers: { 'x-case': label, 'x-tenant': 'acme' },
  };
}

// 16a
async function deadLetterAfterRetries(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('exhausted');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const poison = poisonMessage('16a');
  const next: OutgoingMessage = { type: TEST_TYPE, id: `next-${run()}`, data: { n: 2 } };
  const poisonAttempts: number[] = [];
  const handled: string[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      if (m.id === poison.id) {
        poisonAttempts.push(m.attempt);
        throw new Error(`boom ${m.id}`);
      }
      handled.push(m.id);
    },
    { retry: fastRetry(3) },
  );
  const since = Date.now();
  const producer = broker.producer();
  await producer.publish(q, poison);
  await ctx.waitFor(() => dead.length >= 1, 'the dead letter');
  await observeFor(ctx.quietMs);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  expect(poisonAttempts).toEqual([1, 2, 3]);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(d.datacontenttype).toBe('application/json');
  expect(d.destination).toEqual(queue(`${q.name}.dlq`));
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.HANDLER_FAILED,
    attempts: 3,
    origin: describeDestination(q),
    since,
    reason: `boom ${poison.id}`,
  });
  // The consumer goes on: the next message reaches the handler, which succeeds for it.
  await producer.publish(q, next);
  await ctx.waitFor(() => handled.includes(next.id!), 'the message published after the dead letter');
  expect(handled).toEqual([next.id]);
  expect(poisonAttempts).toHaveLength(3);
  expect(dead).toHaveLength(1);
}

// 16b
async function groupDeadLetter(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const t = ctx.topic(`${ctx.topicBase('group-dlq')}.placed`);
  const failing = ctx.group('failing');
  const healthy = ctx.group('healthy');
  expect(deadLetterQueueName(t, failing)).toBe(`${t.name}.${failing}.dlq`);
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, t, { group: failing });
  const healthyDead = await watchDeadLetters(consumer, t, { group: healthy });
  const poison = poisonMessage('16b');
  const next: OutgoingMessage = { type: TEST_TYPE, id: `next-${run()}`, data: { n: 2 } };
  const failingAttempts: number[] = [];
  const failingHandled: string[] = [];
  const healthySeen: Message<unknown>[] = [];
  await consumer.subscribe(
    t,
    (m) => {
      if (m.id === poison.id) {
        failingAttempts.push(m.attempt);
        throw new Error(`boom ${m.id}`);
      }
      failingHandled.push(m.id);
    },
    { group: failing, retry: fastRetry(3) },
  );
  await consumer.subscribe(t, (m) => void healthySeen.push(m), { group: healthy, retry: fastRetry(3) });
  const since = Date.now();
  const producer = broker.producer();
  await producer.publish(t, poison);
  await ctx.waitFor(() => dead.length >= 1 && healthySeen.length >= 1, "the dead letter and the other group's copy");
  await observeFor(ctx.quietMs);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  expect(failingAttempts).toEqual([1, 2, 3]);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(d.destination).toEqual(queue(`${t.name}.${failing}.dlq`));
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.HANDLER_FAILED,
    attempts: 3,
    origin: `${describeDestination(t)}#${failing}`,
    since,
    reason: `boom ${poison.id}`,
  });
  // The other group got the message once, as published: never one of the failing group's retries.
  expect(healthySeen.map((m) => [m.id, m.attempt, m.redelivered])).toEqual([[poison.id, 1, false]]);
  expect(describeDead(healthyDead)).toEqual([]);
  await producer.publish(t, next);
  await ctx.waitFor(
    () => failingHandled.includes(next.id!) && healthySeen.some((m) => m.id === next.id),
    'the next message in both groups',
  );
  await observeFor(ctx.quietMs);
  expect(failingHandled).toEqual([next.id]);
  expect(healthySeen.map((m) => m.id)).toEqual([poison.id, next.id]);
  expect(dead).toHaveLength(1);
}

// 16c
async function permanentError(ctx: CaseContext): Promise<void> {
  const broker = await ctx.connect({ source: SOURCE });
  const q = ctx.queue('permanent');
  const consumer = broker.consumer();
  const dead = await watchDeadLetters(consumer, q);
  const poison = poisonMessage('16c');
  const attempts: number[] = [];
  await consumer.subscribe(
    q,
    (m) => {
      attempts.push(m.attempt);
      throw new PermanentError(`order ${m.id} does not exist`);
    },
    { retry: fastRetry(5) },
  );
  const since = Date.now();
  await broker.producer().publish(q, poison);
  await ctx.waitFor(() => dead.length >= 1, 'the dead letter');
  await observeFor(ctx.quietMs);
  expect(attempts, 'handler calls: one, no retry').toEqual([1]);
  expect(dead, 'dead letters: exactly one').toHaveLength(1);
  const d = dead[0]!;
  expectSameMessage(d, poison);
  expect(applicationPart(d.headers)).toEqual(poison.headers);
  expectDeadLetter(d, {
    code: ErrorCode.PERMANENT,
    attempts: 1,
    origin: describeDestination(q),
    since,
    reason: `order ${poison.id} does not exist`,
  });
}

/** Case 16: dead letters — exhausted retries and permanent errors end in the dead letter exactly once, with everything a reader needs. */
export const DEAD_LETTER_CASES: readonly ConformanceCase[] = [
  {
    id: '16a',
    title:
      'dead letter: a queue message whose retries are exhausted is dead-lettered exactly once to <queue>.dlq with its id, attributes, data and headers plus the reason, code, attempts, origin and time; later messages still flow',
    run: deadLetterAfterRetries,
  },
  {
    id: '16b',
    title:
      "dead letter: a group's exhausted message goes to <topic>.<group>.dlq once, and another group on the topic gets it exactly once, never the retries",
    requires: ['groups'],
    run: groupDeadLetter,
  },
  {
    id: '16c',
    title: 'dead letter: a PermanentError dead-letters at once, after one handler call, with attempts 1',
    run: permanentError,
  },
];
