/** A listener map: event name → listener signature. */
export type EventMap = {
  /** The listener signature of one event. */
  [event: string]: (...args: never[]) => void;
};

/** A tiny typed event emitter. A listener that throws never breaks the emitter or other listeners. */
export class Emitter<Events extends EventMap> {
  readonly #listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Adds a listener. */
  on<E extends keyof Events>(event: E, listener: Events[E]): this {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof Events>(event: E, listener: Events[E]): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /** Calls every listener of `event`; returns whether there was one. */
  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): boolean {
    const set = this.#listeners.get(event);
    if (set === undefined || set.size === 0) return false;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Events[E]>) => void)(...args);
      } catch {
        // A failing listener must not stop delivery to the others nor the emitter's caller.
      }
    }
    return true;
  }
}
