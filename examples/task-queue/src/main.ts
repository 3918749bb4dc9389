/**
 * The whole tutorial in one process, on any transport (`memory://`, the default, included): a reader of
 * the dead-letter queue, two workers, and a producer sending tasks; it exits once every task is done
 * or dead-lettered. `node examples/task-queue/dist/main.js [--url <url>] [--dot-ms <ms>] [task ...]`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, integerOption, readOptions, URL_USAGE } from './cli.js';
import {
  DOT_MS,
  dotsIn,
  MAX_ATTEMPTS,
  RETRY_DELAY_MS,
  runProducer,
  startWorker,
  TASK_QUEUE,
  watchDeadLetters,
  type Worker,
} from './task-queue.js';

const TASKS = ['First task.', 'Second task..', 'Third task...', 'Fourth task.', 'This one will fail.', 'Fifth task..'];
const USAGE = `usage: node main.js [--url <url>] [--queue <name>] [--dot-ms <ms>] [--retry-ms <ms>] [task ...]
${URL_USAGE}
  --queue <name>   the task queue; default ${TASK_QUEUE}
  --dot-ms <ms>    the work each "." of a task stands for; default ${DOT_MS}
  --retry-ms <ms>  the delay before the first retry, doubling after; default ${RETRY_DELAY_MS}
  task             default: ${TASKS.map((t) => `"${t}"`).join(' ')}`;

const { values: options, positionals } = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: TASK_QUEUE },
      'dot-ms': { type: 'string' },
      'retry-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  }),
);
const url = brokerUrl(options.url);
const dotMs = integerOption(options['dot-ms'], 'dot-ms', DOT_MS, 0, USAGE);
const retryDelayMs = integerOption(options['retry-ms'], 'retry-ms', RETRY_DELAY_MS, 0, USAGE);
const tasks = positionals.length > 0 ? positionals : TASKS;

// Every task ends done or dead-lettered: wait for that, bounded by the work plus the retry delays, with room.
const work = tasks.reduce((sum: number, task: string) => sum + dotsIn(task) * dotMs * MAX_ATTEMPTS, 0);
const timeoutMs = 30_000 + work + retryDelayMs * 2 ** MAX_ATTEMPTS * tasks.length;
let settled = 0;
let allSettled!: () => void;
const finished = new Promise<void>((resolve) => (allSettled = resolve));
const settle = () => {
  if (++settled === tasks.length) allSettled();
};

const closers: (() => Promise<void>)[] = [];
let timer: NodeJS.Timeout | undefined;
try {
  // The dead-letter reader first: on MQTT a queue keeps messages only once subscribed.
  const watcher = await watchDeadLetters(
    url,
    ({ task, reason, attempts }) => {
      console.log(` [!] Dead letter '${task}' after ${attempts} attempts: ${reason}`);
      settle();
    },
    { queue: options.queue },
  );
  closers.push(() => watcher.close());
  console.log(`connected to ${watcher.broker.health().url} (transport: ${watcher.broker.transport})`);

  const workers: Worker[] = [];
  for (const name of ['worker-1', 'worker-2']) {
    const worker = await startWorker(url, name, {
      queue: options.queue,
      dotMs,
      retryDelayMs,
      log: (line) => console.log(line),
      onEvent: (event) => event.kind === 'done' && settle(),
    });
    workers.push(worker);
    closers.unshift(() => worker.close());
  }

  await runProducer(url, tasks, { queue: options.queue });
  for (const task of tasks) console.log(` [x] Sent '${task}'`);
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not every task settled within ${timeoutMs} ms`)), timeoutMs);
  });
  await Promise.race([finished, timedOut]);
  console.log(`all ${tasks.length} tasks done or dead-lettered`);
} catch (error) {
  fail(error);
} finally {
  clearTimeout(timer);
  for (const close of closers) await close().catch(fail); // workers first: they finish the task in hand
}
