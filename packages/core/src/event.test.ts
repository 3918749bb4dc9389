import { rejection } from '../test/helpers.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as v from 'valibot';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError, ErrorCode, ValidationError } from './errors.js';
import {
  type ContractMessage,
  type EventContract,
  type Infer,
  type InferInput,
  contractOf,
  defineEvent,
  isEventContract,
  validate,
} from './event.js';

const zodOrder = z.object({
  orderId: z.string(),
  total: z.number().positive(),
  currency: z.string().default('EUR'),
  placedAt: z.string().transform((s) => new Date(s)),
  lines: z.array(z.object({ sku: z.string(), qty: z.number().int() })).optional(),
});

const valibotOrder = v.object({
  orderId: v.string(),
  total: v.pipe(v.number(), v.minValue(1)),
  note: v.optional(v.string(), 'none'),
  name: v.pipe(
    v.string(),
    v.transform((s) => s.toUpperCase()),
  ),
});

describe('defineEvent with zod 4', () => {
  const OrderPlaced = defineEvent('order.placed', zodOrder);

  it('is a frozen contract with its type and schema', () => {
    expect(OrderPlaced.type).toBe('order.placed');
    expect(OrderPlaced.schema).toBe(zodOrder);
    expect(Object.isFrozen(OrderPlaced)).toBe(true);
    expect(isEventContract(OrderPlaced)).toBe(true);
  });

  it('create() returns a frozen message with the type, the data and the extras', () => {
    const data = { orderId: 'o-1', total: 12, placedAt: '2024-01-01T00:00:00Z' };
    const message = OrderPlaced.create(data, { id: 'm-1', key: 'customer-1', headers: { 'x-t': '1' } });
    expect(message).toMatchObject({
      type: 'order.placed',
      data,
      id: 'm-1',
      key: 'customer-1',
      headers: { 'x-t': '1' },
    });
    expect(message.data).toBe(data);
    expect(Object.isFrozen(message)).toBe(true);
    expect(contractOf(message)).toBe(OrderPlaced);
    expect(contractOf({ type: 'order.placed', data })).toBeUndefined();
  });

  it('create() never lets extras override the type or the data', () => {
    const data = { orderId: 'o-1', total: 12, placedAt: '2024-01-01T00:00:00Z' };
    const sneaky = { type: 'other.type', data: { evil: true } } as unknown as Parameters<typeof OrderPlaced.create>[1];
    const message = OrderPlaced.create(data, sneaky);
    expect(message.type).toBe('order.placed');
    expect(message.data).toBe(data);
  });

  it('parse() returns the schema output: defaults and transforms applied', async () => {
    const parsed = await OrderPlaced.parse({ orderId: 'o-1', total: 12, placedAt: '2024-01-01T00:00:00Z' });
    expect(parsed.currency).toBe('EUR');
    expect(parsed.placedAt).toBeInstanceOf(Date);
    expect(parsed.placedAt.toISOString()).toBe('2024-01-01T00:00:00.000Z');
  });

  it('parse() rejects invalid data with a ValidationError listing every issue and its path', async () => {
    const error = await rejection(
      OrderPlaced.parse({ orderId: 7, total: -1, placedAt: 'x', lines: [{ sku: 'a', qty: 1.5 }] }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    const { code, issues, message } = error as ValidationError;
    expect(code).toBe(ErrorCode.VALIDATION);
    expect(issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining([['orderId'], ['total'], ['lines', 0, 'qty']]),
    );
    expect(issues.length).toBe(3);
    for (const issue of issues) expect(typeof issue.message).toBe('string');
    expect(message).toMatch(/^Invalid "order\.placed" event: .+ at orderId \(\+2 more issues\)$/);
  });

  it('parse() rejects data that is not an object', async () => {
    for (const data of [null, undefined, 'order', 42, []]) {
      expect(await rejection(OrderPlaced.parse(data))).toBeInstanceOf(ValidationError);
    }
  });

  it('works with an async schema (async refine)', async () => {
    const Unique = defineEvent(
      'user.created',
      z.object({ email: z.string() }).refine(async (u) => {
        await Promise.resolve();
        return !u.email.endsWith('@taken.example');
      }, 'email taken'),
    );
    await expect(Unique.parse({ email: 'a@free.example' })).resolves.toEqual({ email: 'a@free.example' });
    const error = await rejection(Unique.parse({ email: 'b@taken.example' }));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]?.message).toBe('email taken');
    expect((error as ValidationError).message).toBe('Invalid "user.created" event: email taken');
  });

  it('infers input and output types from the schema', () => {
    expectTypeOf(OrderPlaced).toEqualTypeOf<EventContract<typeof zodOrder>>();
    expectTypeOf<InferInput<typeof zodOrder>>().toEqualTypeOf<z.input<typeof zodOrder>>();
    expectTypeOf<Infer<typeof zodOrder>>().toEqualTypeOf<z.output<typeof zodOrder>>();
    expectTypeOf(OrderPlaced.parse).returns.resolves.toEqualTypeOf<z.output<typeof zodOrder>>();
    expectTypeOf<Infer<typeof zodOrder>['placedAt']>().toEqualTypeOf<Date>();
    expectTypeOf<Infer<typeof zodOrder>['currency']>().toEqualTypeOf<string>();
    expectTypeOf<InferInput<typeof zodOrder>['placedAt']>().toEqualTypeOf<string>();
    expectTypeOf<InferInput<typeof zodOrder>['currency']>().toEqualTypeOf<string | undefined>();
    expectTypeOf(OrderPlaced.create).parameter(0).toEqualTypeOf<z.input<typeof zodOrder>>();
    expectTypeOf(OrderPlaced.create).returns.toEqualTypeOf<ContractMessage<typeof zodOrder>>();
    expectTypeOf<ContractMessage<typeof zodOrder>['data']>().toEqualTypeOf<z.input<typeof zodOrder>>();
  });
});

describe('defineEvent with valibot 1', () => {
  const OrderPlaced = defineEvent('order.placed', valibotOrder);

  it('create() returns a frozen typed message', () => {
    const message = OrderPlaced.create({ orderId: 'o-1', total: 3, name: 'ann' });
    expect(message).toMatchObject({ type: 'order.placed', data: { orderId: 'o-1', total: 3, name: 'ann' } });
    expect(Object.isFrozen(message)).toBe(true);
  });

  it('parse() returns the schema output: defaults and transforms applied', async () => {
    await expect(OrderPlaced.parse({ orderId: 'o-1', total: 3, name: 'ann' })).resolves.toEqual({
      orderId: 'o-1',
      total: 3,
      note: 'none',
      name: 'ANN',
    });
  });

  it('parse() rejects invalid data with issues and plain paths', async () => {
    const error = await rejection(OrderPlaced.parse({ orderId: 'o-1', total: 0, name: 5 }));
    expect(error).toBeInstanceOf(ValidationError);
    const { issues } = error as ValidationError;
    expect(issues.map((issue) => issue.path)).toEqual([['total'], ['name']]);
    expect((error as ValidationError).message).toMatch(/at total \(\+1 more issues\)$/);
  });

  it('works with an async valibot schema', async () => {
    const Async = defineEvent(
      'async.checked',
      v.objectAsync({
        id: v.pipeAsync(
          v.string(),
          v.checkAsync(async (id) => {
            await Promise.resolve();
            return id !== 'banned';
          }, 'banned id'),
        ),
      }),
    );
    await expect(Async.parse({ id: 'ok' })).resolves.toEqual({ id: 'ok' });
    const error = await rejection(Async.parse({ id: 'banned' }));
    expect((error as ValidationError).issues).toEqual([{ message: 'banned id', path: ['id'] }]);
  });

  it('infers input and output types from the schema', () => {
    expectTypeOf<Infer<typeof valibotOrder>>().toEqualTypeOf<v.InferOutput<typeof valibotOrder>>();
    expectTypeOf<InferInput<typeof valibotOrder>>().toEqualTypeOf<v.InferInput<typeof valibotOrder>>();
    expectTypeOf<Infer<typeof valibotOrder>['note']>().toEqualTypeOf<string>();
    expectTypeOf(OrderPlaced.create).parameter(0).toEqualTypeOf<v.InferInput<typeof valibotOrder>>();
  });
});

describe('defineEvent arguments', () => {
  it('accepts any Standard Schema, including a function-valued one (as arktype makes)', async () => {
    const standard: StandardSchemaV1<unknown, number>['~standard'] = {
      version: 1,
      vendor: 'test',
      validate: (value) =>
        typeof value === 'number' ? { value: value * 2 } : { issues: [{ message: 'not a number', path: [] }] },
    };
    const callable = Object.assign(() => undefined, { '~standard': standard }) as unknown as StandardSchemaV1<
      unknown,
      number
    >;
    const Doubled = defineEvent('doubled', callable);
    await expect(Doubled.parse(21)).resolves.toBe(42);
    const error = await rejection(Doubled.parse('x'));
    expect(error).toBeInstanceOf(ValidationError);
    // an empty path is not named in the message
    expect((error as ValidationError).message).toBe('Invalid "doubled" event: not a number');
  });

  it('maps path segments given as { key } objects to plain keys', async () => {
    const schema: StandardSchemaV1<unknown, unknown> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => ({ issues: [{ message: 'bad', path: [{ key: 'a' }, { key: 2 }, 'b'] }] }),
      },
    };
    const error = await rejection(validate(schema, 'segments', {}));
    expect((error as ValidationError).issues).toEqual([{ message: 'bad', path: ['a', 2, 'b'] }]);
    expect((error as ValidationError).message).toBe('Invalid "segments" event: bad at a.2.b');
  });

  it.each([
    ['a plain object', { parse: () => 1 }],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'z.string()'],
    ['a function without ~standard', () => 1],
    ['a ~standard without validate', { '~standard': { version: 1, vendor: 'x' } }],
  ])('refuses %s as a schema with ConfigurationError', (_label, schema) => {
    let caught: unknown;
    try {
      defineEvent('t', schema as unknown as StandardSchemaV1);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    expect(caught).toMatchObject({ code: ErrorCode.CONFIGURATION });
    expect((caught as Error).message).toContain('Standard Schema');
  });

  it('refuses an empty or non-string type', () => {
    expect(() => defineEvent('', z.string())).toThrow(ConfigurationError);
    expect(() => defineEvent(5 as unknown as string, z.string())).toThrow(ConfigurationError);
  });
});

describe('isEventContract', () => {
  it('tells contracts from other values', () => {
    expect(isEventContract(defineEvent('a', z.string()))).toBe(true);
    expect(isEventContract(defineEvent('b', v.string()))).toBe(true);
    expect(isEventContract({ type: 'a', data: 1 })).toBe(false);
    expect(isEventContract(z.string())).toBe(false);
    expect(isEventContract(null)).toBe(false);
    expect(isEventContract('a')).toBe(false);
    expect(isEventContract(() => undefined)).toBe(false);
  });
});
