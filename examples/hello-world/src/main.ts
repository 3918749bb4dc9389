/**
 * Both sides in one process: subscribes to the queue `hello`, sends "Hello World!", prints it when it
 * arrives, and exits. Works on every transport, `memory://` (the default) included:
 * `node examples/hello-world/dist/main.js [--url <url>]`
 */
import { parseArgs } from 'node:util';
import { brokerUrl, fail, readOptions, URL_USAGE } from './cli.js';
import { GREETING, HELLO_QUEUE, receive, send } from './hello-world.js';

const USAGE = `usage: node main.js [--url <url>] [--queue <name>]
${URL_USAGE}
  --queue <name>  the queue; default ${HELLO_QUEUE}`;
const TIMEOUT_MS = 10_000;

const options = readOptions(USAGE, () =>
  parseArgs({
    options: {
      url: { type: 'string' },
      queue: { type: 'string', default: HELLO_QUEUE },
      help: { type: 'boolean', short: 'h' },
    },
  }),
).values;
const url = brokerUrl(options.url);

try {
  let arrived!: () => void;
  const received = new Promise<void>((resolve) => (arrived = resolve));
  // Subscribe first: on MQTT a queue keeps messages only once someone subscribed to it.
  const receiver = await receive(
    url,
    (text) => {
      console.log(` [x] Received '${text}'`);
      arrived();
    },
    { queue: options.queue },
  );
  console.log(`connected to ${receiver.broker.health().url} (transport: ${receiver.broker.transport})`);
  let timer: NodeJS.Timeout | undefined;
  try {
    await send(url, GREETING, { queue: options.queue });
    console.log(` [x] Sent '${GREETING}'`);
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nothing arrived within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    });
    await Promise.race([received, timedOut]);
  } finally {
    clearTimeout(timer);
    await receiver.close();
  }
} catch (error) {
  fail(error);
}
