/**
 * True when `promise` settles within `ms`; false when the time ran out first. A rejection within the
 * time propagates. The timer is always cleared. @internal
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once every promise in `pending` has settled, including ones added meanwhile. @internal */
export async function drain(pending: ReadonlySet<Promise<unknown>>): Promise<void> {
  while (pending.size > 0) await Promise.allSettled([...pending]);
}

let isoMs = -1;
let isoText = '';

/**
 * The current time as an RFC 3339 string, like `new Date().toISOString()`, formatted at most once per
 * millisecond: every publish stamps `time`, and formatting a date cost more than the rest of the
 * envelope. @internal
 */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}
