import { rejection } from '../../test/helpers.js';
import { describe, expect, it } from 'vitest';
import { type Middleware, compose } from './compose.js';

interface Ctx {
  log: string[];
}

const recorder =
  (name: string): Middleware<Ctx> =>
  async (ctx, next) => {
    ctx.log.push(`${name} in`);
    await next();
    ctx.log.push(`${name} out`);
  };

const innerRecorder = (ctx: Ctx): Promise<void> => {
  ctx.log.push('inner');
  return Promise.resolve();
};

describe('compose', () => {
  it('runs the inner function alone when there is no middleware', async () => {
    const ctx: Ctx = { log: [] };
    await compose<Ctx>([], innerRecorder)(ctx);
    expect(ctx.log).toEqual(['inner']);
  });

  it('runs onion-style: the first added is outermost', async () => {
    const ctx: Ctx = { log: [] };
    await compose([recorder('a'), recorder('b'), recorder('c')], innerRecorder)(ctx);
    expect(ctx.log).toEqual(['a in', 'b in', 'c in', 'inner', 'c out', 'b out', 'a out']);
  });

  it('waits for asynchronous work on both sides of next()', async () => {
    const ctx: Ctx = { log: [] };
    const slow: Middleware<Ctx> = async (c, next) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      c.log.push('slow in');
      await next();
      await new Promise<void>((resolve) => setImmediate(resolve));
      c.log.push('slow out');
    };
    const inner = async (c: Ctx): Promise<void> => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      c.log.push('inner');
    };
    await compose([recorder('a'), slow], inner)(ctx);
    expect(ctx.log).toEqual(['a in', 'slow in', 'inner', 'slow out', 'a out']);
  });

  it('accepts synchronous middleware that returns next()', async () => {
    const ctx: Ctx = { log: [] };
    const sync: Middleware<Ctx> = (c, next) => {
      c.log.push('sync');
      return next();
    };
    await compose([sync], innerRecorder)(ctx);
    expect(ctx.log).toEqual(['sync', 'inner']);
  });

  it('passes the same context to every step, so middleware can change it', async () => {
    const seen: Ctx[] = [];
    const ctx: Ctx = { log: [] };
    const tag: Middleware<Ctx> = async (c, next) => {
      seen.push(c);
      c.log.push('tagged');
      await next();
    };
    await compose([tag, tag], async (c) => {
      seen.push(c);
      expect(c.log).toEqual(['tagged', 'tagged']);
      await Promise.resolve();
    })(ctx);
    expect(seen).toEqual([ctx, ctx, ctx]);
    for (const c of seen) expect(c).toBe(ctx);
  });

  it('rejects when a middleware calls next() twice', async () => {
    const ctx: Ctx = { log: [] };
    const twice: Middleware<Ctx> = async (_c, next) => {
      await next();
      await next();
    };
    const error = await rejection(compose([recorder('a'), twice, recorder('c')], innerRecorder)(ctx));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/next\(\) called more than once/);
    // the inner function ran once only
    expect(ctx.log.filter((line) => line === 'inner')).toHaveLength(1);
  });

  it('rejects when the last middleware calls next() twice, even concurrently', async () => {
    const ctx: Ctx = { log: [] };
    const both: Middleware<Ctx> = async (_c, next) => {
      await Promise.all([next(), next()]);
    };
    await expect(compose([both], innerRecorder)(ctx)).rejects.toThrow(/more than once/);
    expect(ctx.log).toEqual(['inner']);
  });

  it('propagates an inner error through every outer middleware', async () => {
    const ctx: Ctx = { log: [] };
    const boom = new Error('handler failed');
    const error = await rejection(
      compose([recorder('a'), recorder('b')], () => {
        ctx.log.push('inner');
        return Promise.reject(boom);
      })(ctx),
    );
    expect(error).toBe(boom);
    expect(ctx.log).toEqual(['a in', 'b in', 'inner']);
  });

  it('propagates a synchronous throw from a middleware', async () => {
    const boom = new Error('sync throw');
    const thrower: Middleware<Ctx> = () => {
      throw boom;
    };
    const ctx: Ctx = { log: [] };
    await expect(compose([recorder('a'), thrower], innerRecorder)(ctx)).rejects.toBe(boom);
    expect(ctx.log).toEqual(['a in']);
  });

  it('lets an outer middleware catch an inner error', async () => {
    const ctx: Ctx = { log: [] };
    const catcher: Middleware<Ctx> = async (c, next) => {
      try {
        await next();
      } catch (error) {
        c.log.push(`caught ${(error as Error).message}`);
      }
    };
    await compose([recorder('a'), catcher, recorder('b')], () => Promise.reject(new Error('boom')))(ctx);
    expect(ctx.log).toEqual(['a in', 'b in', 'caught boom', 'a out']);
  });

  it('lets an outer middleware replace an inner error', async () => {
    const translate: Middleware<Ctx> = async (_c, next) => {
      try {
        await next();
      } catch {
        throw new Error('translated');
      }
    };
    await expect(compose([translate], () => Promise.reject(new Error('raw')))({ log: [] })).rejects.toThrow(
      'translated',
    );
  });

  it('lets a middleware short-circuit by not calling next()', async () => {
    const ctx: Ctx = { log: [] };
    const gate: Middleware<Ctx> = (c) => {
      c.log.push('gate');
    };
    await compose([recorder('a'), gate, recorder('never')], innerRecorder)(ctx);
    expect(ctx.log).toEqual(['a in', 'gate', 'a out']);
  });

  it('can be run many times, each run independent', async () => {
    const run = compose([recorder('a')], innerRecorder);
    const first: Ctx = { log: [] };
    const second: Ctx = { log: [] };
    await Promise.all([run(first), run(second)]);
    await run(first);
    expect(second.log).toEqual(['a in', 'inner', 'a out']);
    expect(first.log).toEqual(['a in', 'inner', 'a out', 'a in', 'inner', 'a out']);
  });

  it('does not see middleware added to the array after composing', async () => {
    const list: Array<Middleware<Ctx>> = [recorder('a')];
    const run = compose(list, innerRecorder);
    list.push(recorder('late'));
    const ctx: Ctx = { log: [] };
    await run(ctx);
    expect(ctx.log).toEqual(['a in', 'inner', 'a out']);
  });
});
