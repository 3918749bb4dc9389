/** A failure of the example itself: an expectation that did not hold, or a bound that was exceeded. */
export class ExampleError extends Error {
  override name = 'ExampleError';
}

/** `promise`, or an {@link ExampleError} with `message` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ExampleError(typeof message === 'string' ? message : message())), ms);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 2 ms until it holds; an {@link ExampleError} naming `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new ExampleError(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
