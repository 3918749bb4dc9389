import type { Backoff } from './backoff.js';
import type { HealthStatus } from './capabilities.js';
import { ClosedError, ConnectionError, type FerryError } from './errors.js';

/**
 * Waits for `promise`, or rejects with `signal.reason` as soon as `signal` aborts (the listener is
 * removed either way). For transports: bound every wait by the publish's signal.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Waits `ms` (without keeping the process alive), or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return abortable(new Promise<void>((resolve) => setTimeout(resolve, ms).unref()), signal);
}

/**
 * A send whose outcome is unknown: the connection or channel closed before the broker confirmed it
 * (confirm, RECEIPT, PUBACK). The message may or may not be there; sending it again (same id) is safe
 * behind the idempotency middleware. `detail` carries what the broker said, if anything.
 */
export class InDoubtError extends Error {
  /** Always `InDoubtError`. */
  override name = 'InDoubtError';
  constructor(
    message: string,
    /** What the broker said about the failure, if anything. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/**
 * Calls `send` until it resolves. An attempt that fails with {@link InDoubtError} or a `ConnectionError`
 * is tried again, after 10 ms × the attempt (at most 1 s) and whatever `send` itself waits for (the
 * reconnect); any other error, or `signal` aborting, ends it. `onInDoubt` sees each in-doubt failure
 * first and may throw to stop (e.g. a broker that refused the message twice).
 */
export async function resendInDoubt(
  signal: AbortSignal,
  send: () => Promise<void>,
  onInDoubt?: (error: InDoubtError | ConnectionError) => void,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (signal.aborted) throw signal.reason;
    try {
      if (attempt > 0) await pause(Math.min(1_000, 10 * attempt), signal);
      await send();
      return;
    } catch (error) {
      if (!(error instanceof InDoubtError) && !(error instanceof ConnectionError)) throw error;
      onInDoubt?.(error);
    }
  }
}

/** What a {@link LinkState} reports its transitions to (a transport's `emit`). */
export interface LinkEvents {
  /** The first connection of the link dropped (once per outage). */
  disconnected(error: FerryError): void;
  /** Everything is back. */
  connected(): void;
}

/**
 * A transport's connection state (`up`, `reconnecting`, `down`) and the gate that publishes and
 * subscribes wait at while it is not up. `disconnected` is reported once per outage, however many
 * connections dropped; `connected` once everything is back (the transport decides when: after its
 * subscriptions are restored, so buffered publishes never overtake them).
 */
export class LinkState {
  readonly #what: string;
  readonly #events: LinkEvents;
  #status: HealthStatus = 'up';
  #gate: { promise: Promise<void>; open: () => void } | undefined;

  /** `what` names the connection in `ClosedError`s, e.g. `AMQP connection`. */
  constructor(what: string, events: LinkEvents) {
    this.#what = what;
    this.#events = events;
  }

  /** The state now: `up`, `reconnecting` or `down` (closed). */
  get status(): HealthStatus {
    return this.#status;
  }

  /** A connection dropped: waits start to wait; the first drop of an outage reports `disconnected`. */
  down(error: FerryError): void {
    if (this.#status === 'down') return;
    if (this.#gate === undefined) {
      let open = (): void => undefined;
      const promise = new Promise<void>((resolve) => (open = resolve));
      this.#gate = { promise, open };
    }
    if (this.#status === 'up') {
      this.#status = 'reconnecting';
      this.#events.disconnected(error);
    }
  }

  /** Everything is back: waits go on, and `connected` is reported. */
  up(): void {
    if (this.#status === 'down') return;
    const gate = this.#gate;
    this.#gate = undefined;
    if (this.#status === 'reconnecting') {
      this.#status = 'up';
      gate?.open();
      this.#events.connected();
    }
  }

  /**
   * Reports the link up once every part is ready (a transport's subscriptions, each subscribed again on
   * its new session after a reconnect): otherwise resumes the first part that is not, and runs `recheck`
   * once that part is. Does nothing once closed.
   */
  upWhenReady(parts: Iterable<ResumablePart>, recheck: () => void): void {
    if (this.#status === 'down') return;
    for (const part of parts) {
      if (part.ready) continue;
      part.resume()?.then(recheck, () => undefined);
      return;
    }
    this.up();
  }

  /** Closed for good: every wait ends with `ClosedError`. */
  close(): void {
    this.#status = 'down';
    this.#gate?.open();
    this.#gate = undefined;
  }

  /** Resolves at once while up; otherwise when up again. @throws ClosedError once closed; `signal.reason` on abort */
  whenUp(signal: AbortSignal): Promise<void> {
    if (this.#status === 'down') return Promise.reject(new ClosedError(this.#what));
    const gate = this.#gate;
    if (gate === undefined) return Promise.resolve();
    return abortable(gate.promise, signal).then(() => {
      if (this.#status === 'down') throw new ClosedError(this.#what);
    });
  }
}

/** A part of a link that must be ready before the link counts as up (e.g. a subscription). */
export interface ResumablePart {
  /** Subscribed (or otherwise restored) on the live connection. */
  readonly ready: boolean;
  /** Restores it on the live connection; resolves once ready, or `undefined` while it has no connection. */
  resume(): Promise<void> | undefined;
}

/** What a {@link Reconnector} drives: one connection attempt, and what to do with its result. */
export interface ReconnectTarget<C> {
  /** One attempt to connect. */
  connect(): Promise<C>;
  /** The attempt succeeded and the reconnector is still running: start using `connection`. */
  attach(connection: C): void;
  /** The attempt succeeded after `stop()`: close `connection`. */
  discard(connection: C): void;
  /** Attempt `attempt` starts in `delayMs` (for the `reconnecting` event). */
  scheduled(attempt: number, delayMs: number): void;
  /** Attempt `attempt` failed; another follows. */
  failed(error: unknown, attempt: number): void;
}

/**
 * Reconnects with backoff until an attempt succeeds or `stop()`: the loop every transport connection
 * runs after a loss. `reset()` after a success starts the next outage at the first delay again.
 */
export class Reconnector<C> {
  readonly #backoff: Backoff;
  readonly #target: ReconnectTarget<C>;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(backoff: Backoff, target: ReconnectTarget<C>) {
    this.#backoff = backoff;
    this.#target = target;
  }

  /** Schedules the next attempt (after a loss, or after a failed attempt). */
  schedule(): void {
    if (this.#stopped) return;
    const attempt = ++this.#attempt;
    const delay = this.#backoff.delay(attempt);
    this.#target.scheduled(attempt, delay);
    this.#timer = setTimeout(() => {
      this.#target.connect().then(
        (connection) => {
          if (this.#stopped) this.#target.discard(connection);
          else this.#target.attach(connection);
        },
        (error: unknown) => {
          this.#target.failed(error, attempt);
          this.schedule();
        },
      );
    }, delay);
  }

  /** Connected: the next outage starts from the first delay. */
  reset(): void {
    this.#attempt = 0;
  }

  /** No more attempts; a pending one is cancelled. Idempotent. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** True after `stop()`. */
  get stopped(): boolean {
    return this.#stopped;
  }
}
