import type { CodecRegistry } from './codec.js';
import type { ConsumeContext, SubscriptionInfo } from './context.js';
import { type Queue } from './destination.js';
import { applicationHeaders, attemptOf, originOf } from './envelope.js';
import { ClosedError, ErrorCode, FerryError, isPermanent, toFerryError, ValidationError } from './errors.js';
import { type EventContract, validate } from './event.js';
import {
  HEADER_ATTEMPT,
  HEADER_DEAD_LETTER_ATTEMPTS,
  HEADER_DEAD_LETTER_CODE,
  HEADER_DEAD_LETTER_ORIGIN,
  HEADER_DEAD_LETTER_REASON,
  HEADER_DEAD_LETTER_TIME,
} from './headers.js';
import type { Logger } from './logger.js';
import type { Envelope } from './message.js';
import { IncomingMessage, LazyAbort } from './incoming.js';
import type { Backoff } from './backoff.js';
import type { ResolvedRetry } from './options.js';
import { exceedsSize } from './size.js';
import type { Deadlines } from './deadline.js';
import { isoNow, within } from './timing.js';
import type { Redactor } from './redact.js';
import type { Delivery, Transport } from './transport.js';

/** What the delivery processor needs. @internal */
export interface DeliveryDeps {
  readonly transport: Transport;
  readonly codecs: CodecRegistry;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly subscription: SubscriptionInfo;
  readonly deadLetter: Queue;
  readonly retry: ResolvedRetry;
  readonly backoff: Backoff;
  readonly maxMessageBytes: number;
  /** Bounds the dead-letter publish, as `publishTimeout` bounds a producer's. */
  readonly deadlines: Deadlines;
  readonly handlerTimeoutMs: number | undefined;
  readonly decode: boolean;
  readonly contract: EventContract | undefined;
  /** The composed middleware and handler. */
  readonly pipeline: (ctx: ConsumeContext) => Promise<void>;
  /** Aborts when the subscription or consumer closes. */
  readonly closing: AbortSignal;
  /** The in-flight messages' aborts, which the subscription aborts when it closes. */
  readonly inFlight: Set<LazyAbort>;
  readonly onError: (error: FerryError) => void;
}

/**
 * Runs one delivery through decode → validation → middleware → handler, then settles it:
 * success → ack; failure → retry with backoff (republish to the subscription's own queue with the
 * next attempt number) or, when the error is permanent or attempts are used up, dead letter
 * (publish to the DLQ first, then ack). Never throws. @internal
 */
export function processDelivery(deps: DeliveryDeps, delivery: Delivery): Promise<void> {
  const { retry } = deps;
  const headerAttempt = attemptOf(delivery.envelope.headers, retry.maxAttempts);
  const attempt = headerAttempt + Math.max(0, (delivery.deliveryCount ?? 1) - 1);
  const abort = new LazyAbort();
  if (deps.closing.aborted) abort.abort(new ClosedError('Consumer'));
  deps.inFlight.add(abort);
  const failed = (error: unknown): Promise<void> => {
    deps.inFlight.delete(abort);
    return settleFailure(deps, delivery, toFerryError(error), attempt, abort);
  };
  let handled: Promise<void>;
  try {
    // Without a contract to validate against, preparing is synchronous: no promise until the handler.
    const ctx = prepare(deps, delivery, attempt, abort);
    handled =
      ctx instanceof Promise
        ? ctx.then((ready) => runWithTimeout(deps.handlerTimeoutMs, abort, () => deps.pipeline(ready)))
        : runWithTimeout(deps.handlerTimeoutMs, abort, () => deps.pipeline(ctx));
  } catch (error) {
    return failed(error);
  }
  return handled.then(() => {
    deps.inFlight.delete(abort);
    return settle(deps, delivery, () => delivery.ack());
  }, failed);
}

/** The handler's context, or a promise of it when the data must first pass an event contract's schema. */
function prepare(
  deps: DeliveryDeps,
  delivery: Delivery,
  attempt: number,
  abort: LazyAbort,
): ConsumeContext | Promise<ConsumeContext> {
  if (delivery.error !== undefined) throw delivery.error;
  const { envelope } = delivery;
  if (attempt > deps.retry.maxAttempts) {
    throw new FerryError(
      ErrorCode.MAX_ATTEMPTS,
      `Delivered ${attempt} times, more than retry.maxAttempts (${deps.retry.maxAttempts}): a consumer may be crashing on this message`,
    );
  }
  const size = exceedsSize(deps.maxMessageBytes, envelope.body, envelope.headers, envelope.attributes);
  if (size !== undefined) {
    throw new FerryError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `Received message of ${size} bytes exceeds maxMessageBytes (${deps.maxMessageBytes})`,
    );
  }
  const a = envelope.attributes;
  const data = deps.decode ? deps.codecs.decode(envelope.body, a.datacontenttype) : Buffer.from(envelope.body);
  const contract = deps.contract;
  if (contract === undefined) return context(deps, delivery, attempt, abort, data);
  if (a.type !== contract.type) {
    throw new ValidationError(`Expected a "${contract.type}" event, got "${a.type}"`);
  }
  return validate(contract.schema, contract.type, data).then((valid) => context(deps, delivery, attempt, abort, valid));
}

function context(
  deps: DeliveryDeps,
  delivery: Delivery,
  attempt: number,
  abort: LazyAbort,
  data: unknown,
): ConsumeContext {
  const a = delivery.envelope.attributes;
  const message = new IncomingMessage<unknown>(
    {
      id: a.id,
      type: a.type,
      source: a.source,
      time: a.time ?? isoNow(),
      datacontenttype: a.datacontenttype ?? 'application/octet-stream',
      subject: a.subject,
      key: a.partitionkey,
      data,
      headers: Object.freeze(applicationHeaders(delivery.envelope.headers)),
      attempt,
      redelivered: delivery.redelivered || attempt > 1,
      destination: delivery.destination,
    },
    abort,
  );
  return { message, subscription: deps.subscription };
}

function runWithTimeout(ms: number | undefined, abort: LazyAbort, run: () => Promise<void>): Promise<void> {
  return ms === undefined ? run() : timed(ms, abort, run);
}

async function timed(ms: number, abort: LazyAbort, run: () => Promise<void>): Promise<void> {
  const running = run();
  running.catch(() => undefined); // a late failure after the timeout is already accounted for
  if (await within(running, ms)) return;
  const error = new FerryError(
    ErrorCode.HANDLER_TIMEOUT,
    `Handler did not finish within handlerTimeoutMs (${ms} ms); message.signal was aborted and the attempt counts as failed`,
  );
  abort.abort(error);
  throw error;
}

async function settleFailure(
  deps: DeliveryDeps,
  delivery: Delivery,
  error: FerryError,
  attempt: number,
  abort: LazyAbort,
): Promise<void> {
  const { logger, subscription, retry } = deps;
  const fields = { subscription: subscription.id, id: delivery.envelope.attributes.id, attempt, code: error.code };
  if (deps.closing.aborted && abort.reason instanceof ClosedError && !isPermanent(error)) {
    logger.debug(fields, 'consumer closing: message given back for redelivery');
    await settle(deps, delivery, () => delivery.release());
    return;
  }
  if (isPermanent(error) || attempt >= retry.maxAttempts) {
    logger.warn({ ...fields, reason: deps.redactor.text(error.message) }, 'message dead-lettered');
    await settle(deps, delivery, async () => {
      await publishDeadLetter(deps, delivery.envelope, error, attempt);
      await delivery.ack();
    });
    return;
  }
  const delayMs = deps.backoff.delay(attempt);
  logger.debug({ ...fields, delayMs }, 'handler failed: retry scheduled');
  const next: Envelope = {
    ...delivery.envelope,
    headers: { ...delivery.envelope.headers, [HEADER_ATTEMPT]: String(attempt + 1) },
  };
  await settle(deps, delivery, () => delivery.retry(next, delayMs));
}

async function publishDeadLetter(
  deps: DeliveryDeps,
  envelope: Envelope,
  error: FerryError,
  attempt: number,
): Promise<void> {
  const headers: Record<string, string> = { ...envelope.headers };
  delete headers[HEADER_ATTEMPT];
  headers[HEADER_DEAD_LETTER_REASON] = deps.redactor.text(error.message).slice(0, 1024);
  headers[HEADER_DEAD_LETTER_CODE] = error.code;
  headers[HEADER_DEAD_LETTER_ATTEMPTS] = String(attempt);
  headers[HEADER_DEAD_LETTER_ORIGIN] = originOf(deps.subscription.source, deps.subscription.group);
  headers[HEADER_DEAD_LETTER_TIME] = new Date().toISOString();
  await deps.deadlines.run((signal) =>
    deps.transport.publish(deps.deadLetter, { ...envelope, headers }, { signal, mandatory: false }),
  );
}

/** Runs a settlement; when it fails the message is given back (never lost) and the error reported. */
async function settle(deps: DeliveryDeps, delivery: Delivery, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    const failure = deps.redactor.error(toFerryError(error, ErrorCode.CONNECTION)) as FerryError;
    deps.logger.error(
      { subscription: deps.subscription.id, code: failure.code, error: failure.message },
      'could not settle a message; it will be redelivered',
    );
    deps.onError(failure);
    try {
      await delivery.release();
    } catch {
      // The connection is gone: the broker redelivers the unacknowledged message anyway.
    }
  }
}
