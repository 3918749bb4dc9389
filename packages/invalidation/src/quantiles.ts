/** The last `capacity` observations, for percentiles of recent values (a ring buffer, O(1) per add). */
export class Quantiles {
  readonly #values: Float64Array;
  #next = 0;
  #count = 0;
  #max = 0;

  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }

  add(value: number): void {
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#values.length;
    this.#count++;
    if (value > this.#max) this.#max = value;
  }

  /** Count of all observations; p50 and p99 of the recent ones; the largest ever. */
  summary(): { count: number; p50: number; p99: number; max: number } {
    const held = Math.min(this.#count, this.#values.length);
    if (held === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
    const sorted = this.#values.slice(0, held).sort();
    const at = (q: number): number => sorted[Math.min(held - 1, Math.floor(q * held))]!;
    return { count: this.#count, p50: at(0.5), p99: at(0.99), max: this.#max };
  }
}
