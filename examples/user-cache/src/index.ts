/**
 * The user-cache example as a library: the scenario the command line runs, its summary, and the app it
 * starts, so other programs (the demo) can run it in-process.
 */
export {
  runScenario,
  playScenario,
  formatSummary,
  UPDATED_USER,
  UPDATE,
  UNTOUCHED_USER,
  DEFAULT_WAIT_TIMEOUT_MS,
} from './scenario.js';
export type { ScenarioOptions, ScenarioResult, InstanceReport, Read, Source } from './scenario.js';
export { startApp, DEFAULT_URL, DEFAULT_REDIS_URL, DEFAULT_NAMESPACE, STEP_TIMEOUT_MS } from './app.js';
export type { App, AppOptions, Instance } from './app.js';
export { ExampleError } from './wait.js';
