/**
 * The user-cache example's CLI: `node examples/user-cache/dist/main.js [--url <broker-url>] [--namespace <ns>]`.
 * The broker URL comes from `--url`, else `FERRY_URL`, else `memory://`; Redis from `REDIS_URL`, else
 * `redis://127.0.0.1:6379`. The same code runs on every transport.
 */
import { inspect } from 'node:util';
import { FerryError } from '@ferry/core';
import { DEFAULT_NAMESPACE, DEFAULT_URL } from './app.js';
import { formatSummary, runScenario } from './scenario.js';
import { ExampleError } from './wait.js';

const USAGE = `usage: node examples/user-cache/dist/main.js [--url <broker-url>] [--namespace <name>]
  --url        broker URL (or FERRY_URL; default ${DEFAULT_URL}): memory://, amqp://…, mqtt://…, stomp://…
  --namespace  cache namespace (default ${DEFAULT_NAMESPACE}): Redis keys ferry:cache:<name>:*
  Redis: REDIS_URL (default redis://127.0.0.1:6379)`;

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
// `… | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

interface Arguments {
  readonly url: string | undefined;
  readonly namespace: string | undefined;
}

function parse(args: readonly string[]): Arguments {
  const values: { url?: string; namespace?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      print(USAGE);
      process.exit(0);
    }
    const match = /^--(url|namespace)(?:=(.*))?$/.exec(arg);
    if (match === null) throw new ExampleError(`unknown argument "${arg}"\n${USAGE}`);
    const name = match[1] as 'url' | 'namespace';
    const value = match[2] ?? args[++i];
    if (value === undefined || value === '') throw new ExampleError(`--${name} needs a value\n${USAGE}`);
    values[name] = value;
  }
  return { url: values.url, namespace: values.namespace };
}

async function main(): Promise<void> {
  const { url, namespace } = parse(process.argv.slice(2));
  const result = await runScenario({ url, namespace, log: print });
  print();
  print(formatSummary(result));
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    const text =
      error instanceof FerryError
        ? `${error.name} ${error.code}: ${error.message}`
        : error instanceof ExampleError
          ? error.message
          : error instanceof Error
            ? (error.stack ?? error.message)
            : inspect(error);
    process.stderr.write(`\nuser-cache example failed: ${text}\n`);
    process.exitCode = 1;
    // Something that would not close may hold the event loop open: leave anyway, loudly.
    setTimeout(() => process.exit(1), 1_000).unref();
  },
);
