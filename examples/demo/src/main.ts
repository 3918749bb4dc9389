/**
 * Ferry's narrated demo: `npm run demo [-- --url <broker-url>]`. The broker URL comes from `--url`,
 * else `FERRY_URL`, else `memory://demo` (the in-process transport: no broker needed). The same code
 * runs on every transport; a chapter needing a capability the transport lacks is skipped, saying why.
 * The last two chapters run the order-processing and user-cache examples on the same URL; the cache
 * chapter also needs Redis at `REDIS_URL` (default redis://127.0.0.1:6379) and is skipped without it.
 */
import { inspect } from 'node:util';
import { connect, FerryError, type Broker } from '@ferry/core';
import { deadLetter } from './chapters/dead-letter.js';
import { fanOut } from './chapters/fan-out.js';
import { idempotent } from './chapters/idempotency.js';
import { orderProcessing } from './chapters/order-processing.js';
import { userCache } from './chapters/user-cache.js';
import { workQueue } from './chapters/work-queue.js';
import { createScene, type Chapter } from './scene.js';
import { paint, paintFor } from './style.js';
import { DemoError } from './wait.js';

const DEFAULT_URL = 'memory://demo';
const CLOSE_TIMEOUT_MS = 10_000;
const USAGE = `usage: npm run demo [-- --url <broker-url>]   (or FERRY_URL=<broker-url>; default ${DEFAULT_URL})`;
const CHAPTERS: readonly Chapter[] = [workQueue, fanOut, deadLetter, idempotent, orderProcessing, userCache];

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
// `npm run demo | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

/** `--url <u>` or `--url=<u>`, else `FERRY_URL`, else the default. */
function brokerUrl(args: readonly string[]): string {
  let url: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      print(USAGE);
      process.exit(0);
    } else if (arg === '--url') {
      url = args[++i];
      if (url === undefined || url === '') throw new DemoError(`--url needs a value\n${USAGE}`);
    } else if (arg.startsWith('--url=')) {
      url = arg.slice('--url='.length);
    } else {
      throw new DemoError(`unknown argument "${arg}"\n${USAGE}`);
    }
  }
  const fromEnv = process.env['FERRY_URL'];
  return url ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_URL : fromEnv);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new DemoError(inspect(error));
}

async function closeWithin(broker: Broker, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DemoError(`broker.close() did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([broker.close(), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const url = brokerUrl(process.argv.slice(2));
  const broker = await connect(url, { source: 'ferry-demo' });
  const reported: string[] = [];
  broker.on('error', (error) => reported.push(`${error.code}: ${error.message}`));
  print(
    `${paint.title('Ferry demo')} on ${paint.name(broker.health().url)} (transport: ${paint.title(broker.transport)})`,
  );
  let failure: Error | undefined;
  try {
    const scene = createScene(broker, url, print);
    for (const [index, chapter] of CHAPTERS.entries()) {
      print();
      print(`${paint.step(`${index + 1}.`)} ${paint.title(chapter.title)}`);
      const missing = (chapter.requires ?? []).filter((capability) => !broker.capabilities[capability]);
      if (missing.length > 0) {
        const what = missing.map((c) => `capabilities.${c}`).join(', ');
        scene.say(paint.warn(`skipped: the ${broker.transport} transport on this broker lacks it (${what} is false)`));
        continue;
      }
      await chapter.run(scene);
    }
    if (reported.length > 0) throw new DemoError(`the broker reported errors:\n  ${reported.join('\n  ')}`);
  } catch (error) {
    failure = asError(error);
  }
  try {
    await closeWithin(broker, CLOSE_TIMEOUT_MS); // drains consumers, flushes the producer
  } catch (error) {
    failure ??= asError(error);
  }
  if (failure !== undefined) throw failure;
  print();
  print(paint.ok(`${paint.title('Done:')} every chapter behaved as told, and the broker is closed.`));
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    const text =
      error instanceof FerryError
        ? `${error.name} ${error.code}: ${error.message}`
        : error instanceof DemoError
          ? error.message
          : String(error instanceof Error ? (error.stack ?? error.message) : error);
    const red = paintFor(process.stderr);
    process.stderr.write(`\n${red.bad(red.title('Demo failed:'))} ${text}\n`);
    process.exitCode = 1;
    // A broker that would not close may hold the event loop open: leave anyway, loudly.
    setTimeout(() => process.exit(1), 1_000).unref();
  },
);
