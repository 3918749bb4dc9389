/**
 * Sends "Hello World!" to the queue `hello`, then exits:
 * `node examples/hello-world/dist/send.js --url amqp://guest:guest@127.0.0.1:5672`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, memoryNote, readOptions, URL_USAGE } from './cli.js';
import { GREETING, HELLO_QUEUE, send } from './hello-world.js';

const USAGE = `usage: node send.js [--url <url>] [--queue <name>] [--text <text>]
${URL_USAGE}
  --queue <name>  the queue; default ${HELLO_QUEUE}
  --text <text>   what to send; default "${GREETING}"`;

const options = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: HELLO_QUEUE },
      text: { type: 'string', default: GREETING },
      help: { type: 'boolean', short: 'h' },
    },
  }),
).values;
const url = brokerUrl(options.url);

try {
  await send(url, options.text, { queue: options.queue });
  console.log(` [x] Sent '${options.text}' to ${options.queue}`);
  const note = memoryNote(url);
  if (note !== undefined) console.log(note);
} catch (error) {
  fail(error);
}
