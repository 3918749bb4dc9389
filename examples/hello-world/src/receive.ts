/**
 * Prints every message of the queue `hello` until Ctrl-C (or until `--count` messages arrived):
 * `node examples/hello-world/dist/receive.js --url amqp://guest:guest@127.0.0.1:5672`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, memoryNote, readOptions, URL_USAGE } from './cli.js';
import { HELLO_QUEUE, receive } from './hello-world.js';

const USAGE = `usage: node receive.js [--url <url>] [--queue <name>] [--count <n>]
${URL_USAGE}
  --queue <name>  the queue; default ${HELLO_QUEUE}
  --count <n>     exit after n messages; default: run until Ctrl-C`;

const options = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: HELLO_QUEUE },
      count: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
).values;
const url = brokerUrl(options.url);
const count = options.count === undefined ? Infinity : Number(options.count);
if (!(count >= 1)) {
  console.error(`--count needs a number ≥ 1\n${USAGE}`);
  process.exit(2);
}

try {
  let received = 0;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const receiver = await receive(
    url,
    (text) => {
      console.log(` [x] Received '${text}'`);
      if (++received >= count) stop();
    },
    { queue: options.queue },
  );
  console.log(` [*] Waiting for messages in ${options.queue}. To exit press CTRL+C`);
  const note = memoryNote(url);
  if (note !== undefined) console.log(note);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, stop);
  await stopped;
  await receiver.close(); // lets the message being handled finish, then disconnects
} catch (error) {
  fail(error);
}
