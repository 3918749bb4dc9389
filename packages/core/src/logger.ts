/** Structured log fields. */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The logger hook, pino-compatible (`logger.warn({ queue }, 'dead-lettered')`). Ferry is silent by
 * default; pass `ConnectOptions.logger` (e.g. a pino instance) to see what it does.
 */
export interface Logger {
  /** Details for troubleshooting (retries scheduled, messages given back). */
  debug(fields: LogFields, message: string): void;
  /** Connection state changes. */
  info(fields: LogFields, message: string): void;
  /** Something went wrong and was handled (a disconnect, a dead letter). */
  warn(fields: LogFields, message: string): void;
  /** Something failed that needs attention. */
  error(fields: LogFields, message: string): void;
}

const noop = (): void => undefined;

/** A logger that writes nothing (the default). */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
