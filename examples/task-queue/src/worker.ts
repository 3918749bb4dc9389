/**
 * A worker: takes tasks from the queue one at a time until Ctrl-C or SIGTERM, then finishes the task in
 * hand and exits. Start two or more to see them share the work:
 * `node examples/task-queue/dist/worker.js --url amqp://guest:guest@127.0.0.1:5672 --name w1`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, integerOption, memoryNote, readOptions, URL_USAGE } from './cli.js';
import { DOT_MS, MAX_ATTEMPTS, RETRY_DELAY_MS, startWorker, TASK_QUEUE } from './task-queue.js';

const USAGE = `usage: node worker.js [--url <url>] [--queue <name>] [--name <name>] [--dot-ms <ms>]
                      [--max-attempts <n>] [--retry-ms <ms>] [--instance-id <id>]
${URL_USAGE}
  --queue <name>         the task queue; default ${TASK_QUEUE}
  --name <name>          how this worker calls itself in its output; default worker-<pid>
  --dot-ms <ms>          the work each "." of a task stands for; default ${DOT_MS}
  --max-attempts <n>     attempts per task before it is dead-lettered; default ${MAX_ATTEMPTS}
  --retry-ms <ms>        the delay before the first retry, doubling after; default ${RETRY_DELAY_MS}
  --instance-id <id>     MQTT only: a stable id per worker, so that a crashed worker's task waits
                         for it to come back (see the README); default none`;

const options = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: TASK_QUEUE },
      name: { type: 'string', default: `worker-${process.pid}` },
      'dot-ms': { type: 'string' },
      'max-attempts': { type: 'string' },
      'retry-ms': { type: 'string' },
      'instance-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
).values;
const url = brokerUrl(options.url);

try {
  const worker = await startWorker(url, options.name, {
    queue: options.queue,
    dotMs: integerOption(options['dot-ms'], 'dot-ms', DOT_MS, 0, USAGE),
    maxAttempts: integerOption(options['max-attempts'], 'max-attempts', MAX_ATTEMPTS, 1, USAGE),
    retryDelayMs: integerOption(options['retry-ms'], 'retry-ms', RETRY_DELAY_MS, 0, USAGE),
    ...(options['instance-id'] === undefined ? {} : { instanceId: options['instance-id'] }),
    log: (line) => console.log(line),
  });
  worker.broker.on('disconnected', (error) =>
    console.log(`[${worker.name}] connection lost (${error.code}), reconnecting`),
  );
  worker.broker.on('connected', () => console.log(`[${worker.name}] connected again`));
  console.log(` [*] ${worker.name} waiting for tasks in ${options.queue}. To exit press CTRL+C`);
  const note = memoryNote(url);
  if (note !== undefined) console.log(note);

  // Graceful shutdown: no new task, the one in hand is finished and acknowledged, then the process ends.
  // A second signal does not wait: the task in hand goes back to the queue for another worker (on MQTT it
  // waits in this worker's session instead: see the README).
  let closing = false;
  const shutDown = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    console.log(`[${worker.name}] ${signal}: finishing the task in hand, then exiting (again to force)`);
    worker.close().then(() => console.log(`[${worker.name}] stopped`), fail);
  };
  process.on('SIGINT', shutDown);
  process.on('SIGTERM', shutDown);
} catch (error) {
  fail(error);
}
