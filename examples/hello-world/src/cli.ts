/** What the command-line entry points share: reading options, the broker URL, and reporting failures. */
import { DEFAULT_URL, FerryError } from '@ferry/core';

export const URL_USAGE = `  --url <url>     the broker; default: FERRY_URL, else ${DEFAULT_URL}
                  e.g. amqp://guest:guest@127.0.0.1:5672, mqtt://127.0.0.1:1883, stomp://guest:guest@127.0.0.1:61613`;

/**
 * Runs `parse` (a `parseArgs` call from `node:util`); prints `usage` and exits on `--help` or a
 * mistake, such as an unknown option.
 */
export function readOptions<T extends { values: { help?: boolean | undefined } }>(usage: string, parse: () => T): T {
  let options: T;
  try {
    options = parse();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
    process.exit(2);
  }
  if (options.values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return options;
}

/** `--url`, else `FERRY_URL`, else `memory://`. */
export function brokerUrl(flag: string | undefined): string {
  const fromEnv = process.env['FERRY_URL'];
  return flag ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_URL : fromEnv);
}

/** A note for the in-process transport, where nothing crosses processes. */
export function memoryNote(url: string): string | undefined {
  return url.startsWith('memory:')
    ? `(${url} lives inside this process only: run main.js to send and receive in one process)`
    : undefined;
}

/** Prints a failure the way a user can act on it, and sets the exit code. */
export function fail(error: unknown): void {
  const text =
    error instanceof FerryError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  process.stderr.write(`${text}\n`);
  process.exitCode = 1;
}
