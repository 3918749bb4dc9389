import {
  deadLetterQueueName,
  ErrorCode,
  ExponentialBackoff,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  PermanentError,
  queue,
  type Message,
  type RetryOptions,
} from '@ferry/core';
import { orderIdOf, OrderPlaced } from '../contract.js';
import type { Chapter } from '../scene.js';
import { paint } from '../style.js';
import { Collector, expect } from '../wait.js';

/** Jitter off so the story prints exact delays; real services keep the default ±20 %. */
const RETRY = { maxAttempts: 4, initialDelayMs: 50, factor: 2, jitter: 0 } as const satisfies RetryOptions;
/** Timers may fire a hair early; a retry sooner than this before its delay is a failure. */
const TIMER_SLACK_MS = 5;
const SHOWN_HEADERS = [
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_ORIGIN,
];

interface Attempt {
  readonly orderId: string;
  readonly attempt: number;
  readonly at: number;
  readonly outcome: string;
}

/** Chapter 3: a flaky handler retried with backoff, and poison messages ending in the dead letter. */
export const deadLetter: Chapter = {
  title: 'Retries with backoff, then the dead letter',
  async run(scene) {
    const { broker, producer, say } = scene;
    const payments = queue('payments');
    const dlq = queue(deadLetterQueueName(payments));
    const backoff = new ExponentialBackoff(RETRY);
    const attempts = new Collector<Attempt>();
    const charged = new Collector<string>();
    const dead = new Collector<Message<unknown>>();

    const consumer = broker.consumer();
    await consumer.subscribe(
      payments,
      OrderPlaced,
      (message) => {
        if (!scene.mine(message)) return;
        const { orderId, total } = message.data;
        const note = (outcome: string): void =>
          attempts.push({ orderId, attempt: message.attempt, at: performance.now(), outcome });
        if (orderId === 'o-3002') {
          note('threw PermanentError: card declined → no retry');
          throw new PermanentError('card declined');
        }
        if (message.attempt < 3) {
          note(`failed: payment gateway timed out → retry in ${backoff.delay(message.attempt)} ms`);
          throw new Error('payment gateway timed out');
        }
        note(`succeeded: charged ${total.toFixed(2)}`);
        charged.push(orderId);
      },
      { retry: RETRY },
    );
    const reader = broker.consumer();
    await reader.subscribe(dlq, (message) => {
      if (scene.mine(message)) dead.push(message);
    });
    say(
      `queue ${paint.name('"payments"')}: up to ${RETRY.maxAttempts} attempts, backoff ${RETRY.initialDelayMs} ms doubling (jitter off here), then ${paint.name(`"${dlq.name}"`)}`,
    );

    const flaky = { orderId: 'o-3001', customer: 'dennis', total: 12.5 };
    const declined = { orderId: 'o-3002', customer: 'mallory', total: 999 };
    const invalid = { orderId: 'o-3003', customer: 'eve', total: 'lots' };
    await producer.publish(payments, OrderPlaced.create(flaky, scene.stamp(flaky.orderId)));
    await producer.publish(payments, OrderPlaced.create(declined, scene.stamp(declined.orderId)));
    // Published raw, without the contract, so the producer cannot refuse it: the consumer's contract will.
    await producer.publish(payments, { type: OrderPlaced.type, data: invalid, ...scene.stamp(invalid.orderId) });
    await charged.waitFor(1, `${flaky.orderId} to succeed on attempt 3`);
    await dead.waitFor(2, `2 dead letters in "${dlq.name}"`);
    await Promise.all([consumer.close(), reader.close()]);

    for (const orderId of [flaky.orderId, declined.orderId]) {
      const mine = attempts.items.filter((a) => a.orderId === orderId);
      mine.forEach((a, i) => {
        const outcome = a.outcome.startsWith('succeeded') ? paint.ok(a.outcome) : paint.bad(a.outcome);
        say(`${orderId}  attempt ${a.attempt} ${outcome}`, 1);
        expect(a.attempt === i + 1, `${orderId} attempt ${a.attempt} arrived as the attempt number ${i + 1}`);
        const previous = mine[i - 1];
        if (previous === undefined) return;
        const waited = a.at - previous.at;
        const planned = backoff.delay(previous.attempt);
        expect(waited >= planned - TIMER_SLACK_MS, `${orderId} was retried after ${waited} ms, before ${planned} ms`);
      });
    }
    expect(attempts.items.filter((a) => a.orderId === flaky.orderId).length === 3, `${flaky.orderId}: not 3 attempts`);
    expect(!attempts.items.some((a) => a.orderId === invalid.orderId), `the handler ran for ${invalid.orderId}`);
    say(
      `${invalid.orderId}  published raw with total "lots": ${paint.bad('fails the contract')}, the handler never runs`,
      1,
    );

    say(`${paint.name(`"${dlq.name}"`)} holds ${dead.items.length} dead letters, original data and headers plus why:`);
    const sorted = [...dead.items].sort((a, b) => orderIdOf(a.data).localeCompare(orderIdOf(b.data)));
    for (const letter of sorted) {
      say(`${orderIdOf(letter.data)}  data ${JSON.stringify(letter.data)}`, 1);
      for (const name of SHOWN_HEADERS) {
        const value = letter.headers[name] ?? '(missing)';
        say(`${paint.dim(`${name}:`)} ${name === HEADER_DEAD_LETTER_CODE ? paint.code(value) : value}`, 2);
      }
    }
    const codes = sorted.map((letter) => letter.headers[HEADER_DEAD_LETTER_CODE]).join(', ');
    const wanted = [ErrorCode.PERMANENT, ErrorCode.VALIDATION].join(', ');
    expect(codes === wanted, `dead-letter codes ${codes}, expected ${wanted}`);
    scene.proved(
      `${flaky.orderId} succeeded on attempt 3 after its backoffs; the other two wait in "${dlq.name}" with the reason`,
    );
  },
};
