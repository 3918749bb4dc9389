// A one-line progress bar on stderr (redrawn in place on a terminal, one line per step otherwise), and log
// lines that print above it without tearing it.
const isTty = Boolean(process.stderr.isTTY);

function clock(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export class Progress {
  #total;
  #done = 0;
  #label = '';
  #start = Date.now();
  #last = 0;

  constructor(total) {
    this.#total = Math.max(1, total);
  }

  /** Marks one planned step done and shows `label` as what runs next. */
  step(label) {
    this.#done = Math.min(this.#total, this.#done + 1);
    this.#label = label;
    this.#draw(true);
  }

  /** Shows `label` as what runs now, without counting a step. */
  status(label) {
    this.#label = label;
    this.#draw(false);
  }

  /** Prints a line above the bar. */
  log(line) {
    if (isTty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${line}\n`);
    this.#draw(false);
  }

  /** Clears the bar for good (the report prints after it). */
  finish() {
    if (isTty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`bench: ${this.#done}/${this.#total} steps in ${clock(Date.now() - this.#start)}\n`);
  }

  get elapsedMs() {
    return Date.now() - this.#start;
  }

  #draw(counted) {
    const width = 28;
    const filled = Math.round((this.#done / this.#total) * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(this.#done).padStart(3)}/${this.#total} ${clock(Date.now() - this.#start)} ${this.#label}`;
    if (isTty) {
      const columns = process.stderr.columns || 120;
      process.stderr.write(`\r\x1b[2K${bar.slice(0, columns - 1)}`);
    } else if (counted || Date.now() - this.#last > 5000) {
      this.#last = Date.now();
      process.stderr.write(`${bar}\n`);
    }
  }
}
