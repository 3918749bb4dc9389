/**
 * Prints the tasks that kept failing, from the dead-letter queue `tasks.dlq`, until Ctrl-C (or until
 * `--count` arrived). On MQTT start it before the workers: see the README.
 * `node examples/task-queue/dist/dead-letters.js --url amqp://guest:guest@127.0.0.1:5672`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, integerOption, memoryNote, readOptions, URL_USAGE } from './cli.js';
import { deadLetterQueue, TASK_QUEUE, watchDeadLetters } from './task-queue.js';

const USAGE = `usage: node dead-letters.js [--url <url>] [--queue <name>] [--count <n>]
${URL_USAGE}
  --queue <name>  the task queue whose dead letters to read; default ${TASK_QUEUE} (so ${TASK_QUEUE}.dlq)
  --count <n>     exit after n dead letters; default: run until Ctrl-C`;

const options = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: TASK_QUEUE },
      count: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
).values;
const url = brokerUrl(options.url);
const count = integerOption(options.count, 'count', Infinity, 1, USAGE);

try {
  let seen = 0;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const watcher = await watchDeadLetters(
    url,
    ({ task, reason, attempts }) => {
      console.log(` [!] Dead letter '${task}' after ${attempts} attempts: ${reason}`);
      if (++seen >= count) stop();
    },
    { queue: options.queue },
  );
  console.log(` [*] Waiting for dead letters in ${deadLetterQueue(options.queue).name}. To exit press CTRL+C`);
  const note = memoryNote(url);
  if (note !== undefined) console.log(note);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await stopped;
  await watcher.close();
} catch (error) {
  fail(error);
}
