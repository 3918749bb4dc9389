/**
 * Sends tasks to the queue, one per argument; each "." in a task is a second of work, and a task with
 * "fail" in it fails: `node examples/task-queue/dist/new-task.js --url <url> "First task." "Third..."`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, memoryNote, readOptions, URL_USAGE } from './cli.js';
import { runProducer, TASK_QUEUE } from './task-queue.js';

const USAGE = `usage: node new-task.js [--url <url>] [--queue <name>] [task ...]
${URL_USAGE}
  --queue <name>  the task queue; default ${TASK_QUEUE}
  task            the text of a task: each "." is a second of work, "fail" makes it fail;
                  default: one task, "Hello World!"`;

const { values: options, positionals } = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: TASK_QUEUE },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  }),
);
const url = brokerUrl(options.url);
const tasks = positionals.length > 0 ? positionals : ['Hello World!'];

try {
  await runProducer(url, tasks, { queue: options.queue });
  for (const task of tasks) console.log(` [x] Sent '${task}'`);
  const note = memoryNote(url);
  if (note !== undefined) console.log(note);
} catch (error) {
  fail(error);
}
