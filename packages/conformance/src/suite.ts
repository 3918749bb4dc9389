import { describe, expect, it } from 'vitest';
import { CASES } from './cases/index.js';
import { RunContext } from './context.js';
import { type Profile, resolveProfile } from './profile.js';
import type { ConformanceCase, ConformanceOptions } from './types.js';

/** The vitest timeout of one case, ms. */
function caseTimeout(profile: Profile): number {
  return (profile.full ? 300_000 : 60_000) * profile.timeoutFactor;
}

/**
 * Why `testCase` cannot run against this transport, or `undefined` when it runs. Only a capability the
 * transport declares `false`, an applicability rule over capabilities, or a fault hook the transport does not
 * supply can rule a case out.
 */
export function skipReason(testCase: ConformanceCase, options: ConformanceOptions): string | undefined {
  for (const flag of testCase.requires ?? []) {
    if (!options.capabilities[flag]) {
      const why = options.reasons?.[flag];
      return `capabilities.${flag} is false${why === undefined ? '' : ` (${why})`}`;
    }
  }
  const rule = testCase.skipUnless?.(options.capabilities);
  if (rule !== undefined) return rule;
  for (const hook of testCase.hooks ?? []) {
    if (options.faults?.[hook] === undefined) return `needs the faults.${hook} hook, which this test does not supply`;
  }
  return undefined;
}

function register(testCase: ConformanceCase, options: ConformanceOptions, profile: Profile): void {
  const title = `${testCase.id} ${testCase.title}`;
  const reason = skipReason(testCase, options);
  if (reason !== undefined) {
    // Skipped at run time with the reason as the skip note, which reporters print next to the case.
    it(`${title} [skipped: ${reason}]`, (context) => {
      context.skip(reason);
    });
    return;
  }
  it(
    title,
    async () => {
      const ctx = new RunContext(options, profile);
      const started = Date.now();
      try {
        await testCase.run(ctx);
      } finally {
        await ctx.dispose();
        const notes = ctx.notes.length === 0 ? '' : ` — ${ctx.notes.join('; ')}`;
        if (profile.name !== 'short' || ctx.notes.length > 0) {
          console.info(`[conformance ${options.name}] ${testCase.id} ${Date.now() - started} ms${notes}`);
        }
      }
    },
    caseTimeout(profile),
  );
}

/**
 * Registers Ferry's conformance suite against a real broker, from a transport package's own test file:
 *
 * ```ts
 * describeConformance({ name: 'amqp', connect: (o) => connect(URL, o), capabilities: AMQP_CAPABILITIES,
 *   publishRaw, cleanup, faults: { dropConnections, stopBroker, startBroker, isolated } });
 * ```
 *
 * A case the transport's capabilities rule out is reported as skipped with the reason; nothing else is
 * skipped. Cases that affect every connection (`exclusive`) run last, one at a time. The profile comes
 * from `FERRY_CONFORMANCE` (`short` by default, `full`, `stress`: several copies of the suite at once
 * with timeouts ×5).
 */
export function describeConformance(options: ConformanceOptions, cases: readonly ConformanceCase[] = CASES): void {
  const profile = resolveProfile(options.profile);
  describe(`conformance: ${options.name} (${profile.name})`, () => {
    const shared = options.only === 'exclusive' ? [] : cases.filter((c) => c.exclusive !== true);
    const exclusive = options.only === 'shared' ? [] : cases.filter((c) => c.exclusive === true);
    it('00 broker.capabilities equals the capabilities the transport declares', async () => {
      const broker = await options.connect();
      try {
        expect(broker.capabilities).toEqual(options.capabilities);
        expect(Object.isFrozen(broker.capabilities)).toBe(true);
      } finally {
        await broker.close();
      }
    });
    if (profile.copies > 1 && shared.length > 0) {
      describe.concurrent(`${profile.copies} copies at once`, () => {
        for (let copy = 1; copy <= profile.copies; copy++) {
          describe(`copy ${copy}`, () => {
            for (const testCase of shared) register(testCase, options, profile);
          });
        }
      });
    } else {
      for (const testCase of shared) register(testCase, options, profile);
    }
    if (exclusive.length > 0) {
      describe.sequential('faults that touch every connection (run alone)', () => {
        for (const testCase of exclusive) register(testCase, options, profile);
      });
    }
  });
}
