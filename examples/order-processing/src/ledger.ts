import { orderMessageId, SERVICE_NAMES, type ServiceName } from './contract.js';
import type { Delivered, Handled, ServiceObserver } from './service.js';

/** Per service: handler runs per order, per instance, and acknowledged deliveries per message id. */
interface Book {
  readonly runs: Map<string, number>;
  readonly byInstance: Map<string, number>;
  readonly deliveries: Map<string, number>;
}

/**
 * Counts what the services did: how often each one ran its handler for each order, which instance ran
 * it, and how many deliveries each message had (the idempotency middleware acknowledges duplicates
 * without running the handler). The CLI prints it; the tests assert on it. Pass it as the `observer`.
 */
export class Ledger implements ServiceObserver {
  readonly #books = new Map<ServiceName, Book>(
    SERVICE_NAMES.map((name) => [name, { runs: new Map(), byInstance: new Map(), deliveries: new Map() }]),
  );
  readonly #listeners = new Set<() => void>();
  readonly #onHandled: ((run: Handled) => void) | undefined;

  /** @param onHandled called for every handler run, e.g. to print it */
  constructor(onHandled?: (run: Handled) => void) {
    this.#onHandled = onHandled;
  }

  delivered(delivery: Delivered): void {
    increment(this.#book(delivery.service).deliveries, delivery.messageId);
    this.#changed();
  }

  handled(run: Handled): void {
    const book = this.#book(run.service);
    increment(book.runs, run.orderId);
    increment(book.byInstance, run.instance);
    this.#onHandled?.(run);
    this.#changed();
  }

  /** How many times `service` ran its handler for `orderId`. */
  runs(service: ServiceName, orderId: string): number {
    return this.#book(service).runs.get(orderId) ?? 0;
  }

  /** Acknowledged deliveries of the order's message to `service` (handled or absorbed as a duplicate). */
  deliveries(service: ServiceName, orderId: string): number {
    return this.#book(service).deliveries.get(orderMessageId(orderId)) ?? 0;
  }

  /** Handler runs per instance of `service`, e.g. `{ 'payment-1': 5, 'payment-2': 4 }`. */
  shares(service: ServiceName): Record<string, number> {
    return Object.fromEntries([...this.#book(service).byInstance].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Handler runs of `service` in all. */
  totalRuns(service: ServiceName): number {
    let total = 0;
    for (const count of this.#book(service).runs.values()) total += count;
    return total;
  }

  /** Orders of `orderIds` that `service` has not handled yet. */
  missing(service: ServiceName, orderIds: readonly string[]): string[] {
    return orderIds.filter((id) => this.runs(service, id) === 0);
  }

  /**
   * Resolves once `condition()` holds, re-checked on every delivery; rejects after `timeoutMs` with
   * `what()` in the message. The way to wait for a distributed outcome: no fixed sleeps.
   */
  async until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    if (condition()) return;
    let timer: NodeJS.Timeout | undefined;
    let listener: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        listener = () => {
          if (condition()) resolve();
        };
        this.#listeners.add(listener);
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)), timeoutMs);
      });
    } finally {
      clearTimeout(timer);
      if (listener !== undefined) this.#listeners.delete(listener);
    }
  }

  /** Resolves once each of `services` handled each of `orderIds`. */
  handledAll(services: readonly ServiceName[], orderIds: readonly string[], timeoutMs: number): Promise<void> {
    return this.until(
      () => services.every((service) => this.missing(service, orderIds).length === 0),
      timeoutMs,
      () =>
        services
          .map((service) => `${service} to handle ${this.missing(service, orderIds).join(', ') || 'nothing more'}`)
          .join('; '),
    );
  }

  #book(service: ServiceName): Book {
    const book = this.#books.get(service);
    if (book === undefined) throw new RangeError(`unknown service ${service}`);
    return book;
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
