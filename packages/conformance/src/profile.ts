/** How big and how patient a conformance run is. */
export interface Profile {
  /** `short` (what `npm test` runs, about 100 messages per case), `full` (the counts in docs/conformance.md) or `stress`. */
  readonly name: 'short' | 'full' | 'stress';
  /** Full-size counts? (`full` only; `stress` uses the short counts many times over.) */
  readonly full: boolean;
  /** Multiplies every timeout (5 in stress mode, as Watermill does). */
  readonly timeoutFactor: number;
  /** How many copies of the suite run side by side (stress mode). */
  readonly copies: number;
}

/** The profile for `name`, or for `FERRY_CONFORMANCE` (default `short`); `FERRY_CONFORMANCE_COPIES` sets the stress copies. */
export function resolveProfile(name?: string, env: NodeJS.ProcessEnv = process.env): Profile {
  const chosen = name ?? env['FERRY_CONFORMANCE'] ?? 'short';
  switch (chosen) {
    case '':
    case 'short':
      return { name: 'short', full: false, timeoutFactor: 1, copies: 1 };
    case 'full':
      return { name: 'full', full: true, timeoutFactor: 1, copies: 1 };
    case 'stress': {
      const copies = Number(env['FERRY_CONFORMANCE_COPIES'] ?? 4);
      if (!Number.isInteger(copies) || copies < 1) {
        throw new Error(`FERRY_CONFORMANCE_COPIES must be an integer >= 1, got "${env['FERRY_CONFORMANCE_COPIES']}"`);
      }
      return { name: 'stress', full: false, timeoutFactor: 5, copies };
    }
    default:
      throw new Error(`FERRY_CONFORMANCE must be short, full or stress, got "${chosen}"`);
  }
}
