/**
 * A work queue, as in RabbitMQ's tutorial 2, on any Ferry transport. A producer sends tasks to the
 * durable queue `tasks`; every `.` in a task's text is a second of work. Workers compete for the
 * tasks, one at a time each (fair dispatch), so every task is handled by one worker. A task that
 * fails is retried, then dead-lettered to `tasks.dlq`.
 */
import type {} from '@ferry/mqtt'; // the type of the `mqtt` connect option (instanceId)
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connect,
  deadLetterQueueName,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_REASON,
  queue,
  type Broker,
  type ConnectOptions,
  type Message,
  type Queue,
} from '@ferry/core';

export const TASK_QUEUE = 'tasks';
/** How long each `.` of a task takes, ms: a second, as in the tutorial. */
export const DOT_MS = 1_000;
/** Attempts per task, the first one included, before it is dead-lettered. */
export const MAX_ATTEMPTS = 3;
/** The delay before the first retry, ms; it doubles with each further one. */
export const RETRY_DELAY_MS = 1_000;

/** The task queue: durable, so tasks wait for a worker, and survive a broker restart where the broker can. */
export function taskQueue(name = TASK_QUEUE): Queue {
  return queue(name, { durable: true });
}

/** Where tasks that kept failing end up: `<queue>.dlq`. */
export function deadLetterQueue(name = TASK_QUEUE): Queue {
  return queue(deadLetterQueueName(taskQueue(name)));
}

/** Sends the tasks, each once the broker has it, then closes. */
export async function runProducer(url: string, tasks: readonly string[], options: { queue?: string } = {}) {
  const broker = await connect(url, { source: 'task-queue-producer' });
  try {
    const producer = broker.producer();
    for (const task of tasks) await producer.publish(taskQueue(options.queue), { type: 'task', data: task });
  } finally {
    await broker.close();
  }
}

export interface WorkerOptions {
  readonly queue?: string;
  /** ms per `.` of a task. Default {@link DOT_MS}. */
  readonly dotMs?: number;
  readonly maxAttempts?: number;
  readonly retryDelayMs?: number;
  /** MQTT only: a stable identity, so a crashed worker's task waits for it to come back (see README). */
  readonly instanceId?: string;
  /** More `connect()` options. */
  readonly connectOptions?: ConnectOptions;
  /** Where the worker tells what it does. Default: nowhere. */
  readonly log?: (line: string) => void;
  /** Called as a task is received, done or failed (for tests and dashboards). */
  readonly onEvent?: (event: WorkerEvent) => void;
}

export interface WorkerEvent {
  readonly kind: 'received' | 'done' | 'failed';
  readonly worker: string;
  readonly task: string;
  readonly attempt: number;
  /** Delivered before: a retry, or the task of a worker that died. */
  readonly redelivered: boolean;
}

export interface Worker {
  readonly name: string;
  readonly broker: Broker;
  /** Takes no new task, finishes the one in hand, then disconnects. */
  close(): Promise<void>;
}

/** Connects a worker that takes tasks one at a time until `close()`. */
export async function startWorker(url: string, name: string, options: WorkerOptions = {}): Promise<Worker> {
  const { dotMs = DOT_MS, maxAttempts = MAX_ATTEMPTS, retryDelayMs = RETRY_DELAY_MS } = options;
  const log = options.log ?? (() => undefined);
  const broker = await connect(url, {
    source: `task-queue-${name}`,
    ...options.connectOptions,
    ...(options.instanceId === undefined ? {} : { mqtt: { instanceId: options.instanceId } }),
  });

  const handle = async (message: Message) => {
    const task = textOf(message.data);
    const event = (kind: WorkerEvent['kind']) =>
      options.onEvent?.({ kind, worker: name, task, attempt: message.attempt, redelivered: message.redelivered });
    const again = message.redelivered ? ` (redelivered, attempt ${message.attempt})` : '';
    log(`[${name}] received '${task}'${again}`);
    event('received');
    // The work. It does not stop on message.signal: close() waits for the task in hand instead.
    await sleep(dotsIn(task) * dotMs);
    if (task.includes('fail')) {
      const last = message.attempt >= maxAttempts ? ': giving up, to the dead-letter queue' : ', will retry';
      log(`[${name}] failed '${task}' (attempt ${message.attempt} of ${maxAttempts})${last}`);
      event('failed');
      throw new Error(`cannot do '${task}'`); // a throw is retried with backoff, then dead-lettered
    }
    log(`[${name}] done '${task}'`);
    event('done'); // returning acknowledges the task
  };

  try {
    await broker.consumer().subscribe(taskQueue(options.queue), handle, {
      concurrency: 1, // one task at a time: fair dispatch, a busy worker is sent no new task
      retry: { maxAttempts, initialDelayMs: retryDelayMs },
    });
  } catch (error) {
    await broker.close();
    throw error;
  }
  return { name, broker, close: () => broker.close() };
}

export interface DeadLetter {
  readonly task: string;
  readonly reason: string;
  readonly attempts: number;
}

/** Connects a reader of the dead-letter queue that calls `onDeadLetter` for each, until `close()`. */
export async function watchDeadLetters(
  url: string,
  onDeadLetter: (deadLetter: DeadLetter) => void,
  options: { queue?: string } = {},
): Promise<{ broker: Broker; close(): Promise<void> }> {
  const broker = await connect(url, { source: 'task-queue-dead-letters' });
  try {
    await broker.consumer().subscribe(deadLetterQueue(options.queue), (message) =>
      onDeadLetter({
        task: textOf(message.data),
        reason: message.headers[HEADER_DEAD_LETTER_REASON] ?? 'unknown',
        attempts: Number(message.headers[HEADER_DEAD_LETTER_ATTEMPTS] ?? 0),
      }),
    );
  } catch (error) {
    await broker.close();
    throw error;
  }
  return { broker, close: () => broker.close() };
}

/** Seconds of work in a task: its dots. */
export function dotsIn(task: string): number {
  return task.split('.').length - 1;
}

/** The text of a task: a string as sent by Ferry, or the bytes of a plain client's message. */
export function textOf(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  return JSON.stringify(data);
}
