import { ExponentialBackoff } from './backoff.js';
import { CodecRegistry, jsonCodec } from './codec.js';
import { FerryBroker, type Broker } from './broker.js';
import { ConfigurationError, ConnectionError, ErrorCode, FerryError } from './errors.js';
import { silentLogger } from './logger.js';
import { createMemoryTransport } from './memory/transport.js';
import { DEFAULT_MAX_MESSAGE_BYTES, defaultSource, type ConnectOptions } from './options.js';
import { Redactor } from './redact.js';
import type { Transport, TransportFactory } from './transport.js';

/** The transport package each URL scheme needs. */
export const TRANSPORT_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  amqp: '@ferry/amqp',
  amqps: '@ferry/amqp',
  mqtt: '@ferry/mqtt',
  mqtts: '@ferry/mqtt',
  stomp: '@ferry/stomp',
  stomps: '@ferry/stomp',
});

/** The URL used when `connect()` gets none and `FERRY_URL` is unset: the embedded transport. */
export const DEFAULT_URL = 'memory://';

/**
 * Connects to a broker, choosing the transport by the URL's scheme: `memory:`, `amqp:`/`amqps:`,
 * `mqtt:`/`mqtts:`, `stomp:`/`stomps:`. The transport package (`@ferry/amqp`, ...) is loaded on demand.
 *
 * @param url Broker URL. Default: the `FERRY_URL` environment variable, else `memory://`.
 * @throws ConfigurationError `FERRY_INVALID_URL` (bad URL or unknown scheme), `FERRY_TRANSPORT_MISSING`
 *   (the transport package is not installed: the message names the `npm install` to run).
 * @throws ConnectionError when the broker cannot be reached. No error ever contains the password.
 */
export async function connect(url?: string, options: ConnectOptions = {}): Promise<Broker> {
  const target = url ?? nonEmpty(process.env['FERRY_URL']) ?? DEFAULT_URL;
  const redactor = new Redactor(target);
  let parsed: URL;
  try {
    parsed = new URL(target);
  } catch (cause) {
    throw redactor.error(
      new ConfigurationError(
        `Invalid broker URL "${target}": expected e.g. amqp://localhost:5672, mqtt://localhost:1883, stomp://localhost:61613 or memory://`,
        { code: ErrorCode.INVALID_URL, cause },
      ),
    );
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  const factory = await resolveFactory(scheme, options, redactor);
  const logger = options.logger ?? silentLogger;
  const requested = options.maxMessageBytes;
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new ConfigurationError(`maxMessageBytes must be an integer >= 1, got ${String(requested)}`);
  }
  const connectionName = options.connectionName;
  if (
    connectionName !== undefined &&
    (typeof connectionName !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(connectionName))
  ) {
    throw new ConfigurationError(
      `connectionName must be 1-200 visible ASCII characters without spaces, got ${JSON.stringify(connectionName)}`,
    );
  }
  // Everything that can be checked is checked before a connection exists, so a bad option leaks no socket.
  const codecs = new CodecRegistry(options.codecs, jsonCodec(options.json));
  const source = options.source ?? defaultSource();
  let transport: Transport;
  try {
    transport = await factory({
      url: parsed,
      options: options as Readonly<Record<string, unknown>>,
      logger,
      redactor,
      reconnect: new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 10_000, ...options.reconnect }),
      maxMessageBytes: requested ?? DEFAULT_MAX_MESSAGE_BYTES,
      ...(connectionName === undefined ? {} : { connectionName }),
    });
  } catch (error) {
    const wrapped =
      error instanceof FerryError
        ? error
        : new ConnectionError(
            `Cannot connect to ${redactor.url(target)}: ${String((error as Error)?.message ?? error)}`,
            {
              cause: error,
            },
          );
    throw redactor.error(wrapped);
  }
  const limit = Math.min(requested ?? DEFAULT_MAX_MESSAGE_BYTES, transport.capabilities.maxMessageBytes);
  return new FerryBroker(transport, {
    url: target,
    options,
    redactor,
    logger,
    source,
    maxMessageBytes: limit,
    codecs,
  });
}

async function resolveFactory(scheme: string, options: ConnectOptions, redactor: Redactor): Promise<TransportFactory> {
  const custom = options.transports?.[scheme];
  if (typeof custom === 'function') return custom;
  if (custom === undefined && scheme === 'memory') return createMemoryTransport;
  const specifier = custom ?? TRANSPORT_PACKAGES[scheme];
  if (specifier === undefined) {
    throw new ConfigurationError(
      `Unknown broker URL scheme "${scheme}:": use memory:, amqp:, amqps:, mqtt:, mqtts:, stomp: or stomps: (or register one with ConnectOptions.transports)`,
      { code: ErrorCode.INVALID_URL },
    );
  }
  let loaded: { createTransport?: unknown };
  try {
    loaded = (await import(specifier)) as { createTransport?: unknown };
  } catch (cause) {
    if (isMissingModule(cause, specifier)) {
      throw new ConfigurationError(
        `The ${scheme}:// transport needs the package ${specifier}, which is not installed: run \`npm install ${specifier}\``,
        { code: ErrorCode.TRANSPORT_MISSING, cause: redactor.error(cause) },
      );
    }
    throw redactor.error(cause);
  }
  if (typeof loaded.createTransport !== 'function') {
    throw new ConfigurationError(`${specifier} does not export createTransport(): is it a Ferry transport package?`);
  }
  return loaded.createTransport as TransportFactory;
}

function isMissingModule(error: unknown, specifier: string): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : '';
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(specifier);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
