/**
 * `@ferry/conformance`: the suite that defines "done" for a Ferry transport, and a TCP fault proxy.
 *
 * A transport package calls {@link describeConformance} from one of its vitest test files against a real
 * broker. See docs/conformance.md for the cases, the capabilities that gate them and the profiles.
 *
 * @packageDocumentation
 * @module @ferry/conformance
 */
export { describeConformance, skipReason } from './suite.js';
export { CASES } from './cases/index.js';
export { resolveProfile } from './profile.js';
export type { Profile } from './profile.js';
export type {
  CaseContext,
  CapabilityFlag,
  ConformanceCase,
  ConformanceFaults,
  ConformanceOptions,
  CreatedResources,
  IsolatedBroker,
  RawMessage,
} from './types.js';
export { FaultProxy } from './proxy.js';
export { makeCertificates } from './tls.js';
export type { TestCertificates } from './tls.js';
export type { FaultProxyOptions, FaultProxyStats } from './proxy.js';
export { uniqueName, waitFor, observeFor, deferred, rejection, inParallel, Tally } from './helpers.js';
export type { Deferred } from './helpers.js';
export { expectSoakPassed, runSoak, soakSize } from './soak.js';
export type { SoakOptions, SoakReport } from './soak.js';
