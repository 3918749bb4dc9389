/** One step of a pipeline: do work, call `next()` to continue inward, and work again after it returns. */
export type Middleware<Ctx> = (ctx: Ctx, next: () => Promise<void>) => Promise<void> | void;

/**
 * Composes middleware into one function, onion-style: the first added runs outermost (first in,
 * last out). Calling `next()` twice is a bug and rejects. The list is copied: changing the array
 * afterwards does not change the composed function (nor a run in flight).
 */
export function compose<Ctx>(
  middleware: ReadonlyArray<Middleware<Ctx>>,
  inner: (ctx: Ctx) => Promise<void>,
): (ctx: Ctx) => Promise<void> {
  const steps = [...middleware];
  if (steps.length === 0) return inner;
  if (steps.length === 1) {
    // The common case (tracing only), without an async frame of its own: one middleware call per message.
    const [step] = steps as [Middleware<Ctx>];
    return (ctx) => {
      let called = false;
      const next = (): Promise<void> => {
        if (called) return Promise.reject(new Error('next() called more than once in one middleware'));
        called = true;
        return inner(ctx);
      };
      try {
        const result = step(ctx, next);
        // A native promise comes back as it is; a thenable is adopted; void (a sync middleware) resolves.
        return result === undefined ? Promise.resolve() : Promise.resolve(result);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
  }
  return (ctx) => {
    let last = -1;
    const run = async (i: number): Promise<void> => {
      if (i <= last) throw new Error('next() called more than once in one middleware');
      last = i;
      const step = steps[i];
      if (step === undefined) return inner(ctx);
      await step(ctx, () => run(i + 1));
    };
    return run(0);
  };
}
