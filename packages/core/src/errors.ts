/**
 * Every error Ferry throws is a {@link FerryError} with a stable `code` from {@link ErrorCode}.
 * Codes never change once released; messages say what to do. See docs/errors.md.
 *
 * @packageDocumentation
 */

/** The table of stable error codes. Branch on `error.code`, never on the message. */
export const ErrorCode = {
  /** An option or argument is invalid (the message names it). */
  CONFIGURATION: 'FERRY_CONFIGURATION',
  /** The connection URL cannot be parsed or uses an unknown scheme. */
  INVALID_URL: 'FERRY_INVALID_URL',
  /** The transport package for the URL's scheme is not installed. */
  TRANSPORT_MISSING: 'FERRY_TRANSPORT_MISSING',
  /** A queue or topic name breaks the naming rules. */
  INVALID_DESTINATION: 'FERRY_INVALID_DESTINATION',
  /** A header name is reserved for Ferry or the protocol (`ce-*`, `ferry-*`, ...). */
  RESERVED_HEADER: 'FERRY_RESERVED_HEADER',
  /** A header name or value is not a valid string. */
  INVALID_HEADER: 'FERRY_INVALID_HEADER',
  /** The broker cannot be reached or closed the connection. */
  CONNECTION: 'FERRY_CONNECTION',
  /** The broker refused a message (nack, error frame, ...). */
  PUBLISH_REJECTED: 'FERRY_PUBLISH_REJECTED',
  /** The broker did not confirm the message within `publishTimeout`. */
  PUBLISH_TIMEOUT: 'FERRY_PUBLISH_TIMEOUT',
  /** No queue was bound to take the message (mandatory publish). */
  UNROUTABLE: 'FERRY_UNROUTABLE',
  /** A bounded buffer or queue is full; slow down or raise the limit. */
  OVERFLOW: 'FERRY_OVERFLOW',
  /** The encoded message exceeds `maxMessageBytes`. */
  MESSAGE_TOO_LARGE: 'FERRY_MESSAGE_TOO_LARGE',
  /** The message failed its schema or is not of the expected type. */
  VALIDATION: 'FERRY_VALIDATION',
  /** A message body could not be encoded with its codec. */
  ENCODE: 'FERRY_ENCODE',
  /** A received body could not be decoded (bad JSON, hostile JSON, unknown content type). */
  DECODE: 'FERRY_DECODE',
  /** A handler ran past `handlerTimeoutMs`. */
  HANDLER_TIMEOUT: 'FERRY_HANDLER_TIMEOUT',
  /** A handler threw; the dead letter keeps its message. */
  HANDLER_FAILED: 'FERRY_HANDLER_FAILED',
  /** A handler asked not to retry ({@link PermanentError}). */
  PERMANENT: 'FERRY_PERMANENT',
  /** Another handler holds the idempotency claim for this message id; the copy is retried later. */
  IN_PROGRESS: 'FERRY_IN_PROGRESS',
  /** The broker redelivered a message more often than `retry.maxAttempts` allows. */
  MAX_ATTEMPTS: 'FERRY_MAX_ATTEMPTS',
  /** The broker, producer, consumer or subscription was closed. */
  CLOSED: 'FERRY_CLOSED',
  /** The transport cannot do what was asked (see `broker.capabilities`). */
  UNSUPPORTED: 'FERRY_UNSUPPORTED',
  /** The cache's shared store (Redis) failed or is unreachable. */
  CACHE_STORE: 'FERRY_CACHE_STORE',
} as const;

/** One of the stable codes of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options shared by every Ferry error. */
export interface FerryErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
}

/** Base class of every error Ferry throws. */
export class FerryError extends Error {
  /** Stable code from {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** The class name (`FerryError`, `PublishError`, ...), for logs. */
  override name = 'FerryError';

  constructor(code: ErrorCodeValue, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  /** A plain object for logs and dead-letter headers. */
  toJSON(): {
    /** {@link FerryError.name} */
    name: string;
    /** {@link FerryError.code} */
    code: ErrorCodeValue;
    /** The error message (already redacted where Ferry threw it). */
    message: string;
  } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** An invalid option, argument, URL or destination. Fix the call; retrying will not help. */
export class ConfigurationError extends FerryError {
  override name = 'ConfigurationError';
  constructor(message: string, options: FerryErrorOptions & { code?: ErrorCodeValue } = {}) {
    super(options.code ?? ErrorCode.CONFIGURATION, message, options);
  }
}

/** The broker could not be reached, or the connection was lost. */
export class ConnectionError extends FerryError {
  override name = 'ConnectionError';
  constructor(message: string, options: FerryErrorOptions = {}) {
    super(ErrorCode.CONNECTION, message, options);
  }
}

/** The broker did not take responsibility for a message; it was not (or may not have been) sent. */
export class PublishError extends FerryError {
  override name = 'PublishError';
  constructor(
    code:
      | typeof ErrorCode.PUBLISH_REJECTED
      | typeof ErrorCode.PUBLISH_TIMEOUT
      | typeof ErrorCode.UNROUTABLE
      | typeof ErrorCode.OVERFLOW
      | typeof ErrorCode.MESSAGE_TOO_LARGE
      | typeof ErrorCode.ENCODE,
    message: string,
    options: FerryErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** One problem reported by a schema (Standard Schema's issue shape). */
export interface ValidationIssue {
  /** What is wrong, in the schema library's words. */
  readonly message: string;
  /** Where in the data, as property keys from the root (absent: the data as a whole). */
  readonly path?: ReadonlyArray<PropertyKey>;
}

/** A message failed its event contract. On publish nothing was sent; on receipt it went to the dead letter. */
export class ValidationError extends FerryError {
  override name = 'ValidationError';
  /** The schema's issues, as reported. */
  readonly issues: ReadonlyArray<ValidationIssue>;
  constructor(message: string, issues: ReadonlyArray<ValidationIssue> = [], options: FerryErrorOptions = {}) {
    super(ErrorCode.VALIDATION, message, options);
    this.issues = issues;
  }
}

/** A received body could not be decoded. The message went to the dead letter with its original bytes. */
export class DecodeError extends FerryError {
  override name = 'DecodeError';
  constructor(message: string, options: FerryErrorOptions = {}) {
    super(ErrorCode.DECODE, message, options);
  }
}

/** The object was closed; create a new one (or do not call it after `close()`). */
export class ClosedError extends FerryError {
  override name = 'ClosedError';
  constructor(what: string) {
    super(ErrorCode.CLOSED, `${what} is closed: create a new one, or stop calling it after close()`);
  }
}

/** The transport cannot honour the request; `broker.capabilities` tells what it can. */
export class UnsupportedError extends FerryError {
  override name = 'UnsupportedError';
  constructor(message: string, options: FerryErrorOptions = {}) {
    super(ErrorCode.UNSUPPORTED, message, options);
  }
}

/**
 * Throw from a handler to skip the remaining retries: the message goes straight to the dead letter.
 * Use it for failures that another attempt cannot fix (a record that does not exist, a rejected payment).
 */
export class PermanentError extends FerryError {
  override name = 'PermanentError';
  constructor(message: string, options: FerryErrorOptions = {}) {
    super(ErrorCode.PERMANENT, message, options);
  }
}

const permanentCodes: ReadonlySet<ErrorCodeValue> = new Set([
  ErrorCode.PERMANENT,
  ErrorCode.VALIDATION,
  ErrorCode.DECODE,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.MAX_ATTEMPTS,
  ErrorCode.CONFIGURATION,
  ErrorCode.INVALID_HEADER,
  ErrorCode.RESERVED_HEADER,
  ErrorCode.INVALID_DESTINATION,
  ErrorCode.INVALID_URL,
  ErrorCode.TRANSPORT_MISSING,
  ErrorCode.ENCODE,
]);

/** True when another attempt cannot succeed, so retries are skipped. */
export function isPermanent(error: unknown): boolean {
  return error instanceof FerryError && permanentCodes.has(error.code);
}

/** Wraps anything thrown into a {@link FerryError} once, keeping the original as `cause`. */
export function toFerryError(error: unknown, code: ErrorCodeValue = ErrorCode.HANDLER_FAILED): FerryError {
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FerryError(code, message, { cause: error });
}
