import type { ConformanceCase } from '../types.js';
import { DELIVERY_CASES } from './delivery.js';
import { FAILURE_CASES } from './failure.js';
import { LIFECYCLE_CASES } from './lifecycle.js';
import { VOLUME_CASES } from './volume.js';

/** Every case, ordered by id. */
export const CASES: readonly ConformanceCase[] = [
  ...DELIVERY_CASES,
  ...VOLUME_CASES,
  ...FAILURE_CASES,
  ...LIFECYCLE_CASES,
].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
