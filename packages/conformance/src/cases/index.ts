import type { ConformanceCase } from '../types.js';
import { PRODUCER_CASES } from './producers.js';
import { ROUND_TRIP_CASES } from './round-trip.js';
import { ROUTING_CASES } from './routing.js';
import { CONCURRENCY_CASES } from './concurrency.js';
import { DEAD_LETTER_CASES } from './dead-letter.js';
import { POISON_CASES } from './poison.js';
import { RETRY_CASES } from './retry.js';
import { CLOSING_CASES } from './closing.js';
import { DURABILITY_CASES } from './durability.js';
import { OUTAGE_CASES } from './outages.js';
import { CHURN_CASES } from './churn.js';
import { FAN_OUT_CASES } from './fan-out.js';
import { ORDERING_CASES } from './ordering.js';
import { VOLUME_CASES } from './volume.js';

/** Every case, ordered by id. */
export const CASES: readonly ConformanceCase[] = [
  ...ROUND_TRIP_CASES,
  ...ROUTING_CASES,
  ...PRODUCER_CASES,
  ...VOLUME_CASES,
  ...ORDERING_CASES,
  ...FAN_OUT_CASES,
  ...CHURN_CASES,
  ...RETRY_CASES,
  ...DEAD_LETTER_CASES,
  ...POISON_CASES,
  ...CONCURRENCY_CASES,
  ...DURABILITY_CASES,
  ...CLOSING_CASES,
  ...OUTAGE_CASES,
].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
