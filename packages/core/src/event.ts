import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ConfigurationError, ErrorCode, ValidationError } from './errors.js';
import type { OutgoingMessage } from './message.js';

/** The data type a schema accepts. */
export type InferInput<S extends StandardSchemaV1> = StandardSchemaV1.InferInput<S>;
/** The data type a schema produces (what a handler sees). */
export type Infer<S extends StandardSchemaV1> = StandardSchemaV1.InferOutput<S>;

/** Everything of an {@link OutgoingMessage} except what the contract fixes. */
export type EventExtras = Omit<OutgoingMessage, 'type' | 'data'>;

const CONTRACT = Symbol.for('ferry.contract');

/** An outgoing message created by a contract; `publish()` validates it before sending. */
export type ContractMessage<S extends StandardSchemaV1> = OutgoingMessage<InferInput<S>> & {
  /** The contract that made it (a symbol key, so it never travels). */
  readonly [CONTRACT]: EventContract<S>;
};

/** A typed event: its CloudEvents `type` and its Standard Schema (zod, valibot, arktype...). */
export interface EventContract<S extends StandardSchemaV1 = StandardSchemaV1> {
  /** The CloudEvents `type` of every message of this contract. */
  readonly type: string;
  /** The Standard Schema that validates `data`. */
  readonly schema: S;
  /** An outgoing message of this type; validated by `producer.publish()` (invalid → `ValidationError`, nothing sent). */
  create(data: InferInput<S>, extras?: EventExtras): ContractMessage<S>;
  /** Validates data against the schema and returns the schema's output. @throws ValidationError */
  parse(data: unknown): Promise<Infer<S>>;
}

/**
 * Defines a typed event contract from any Standard Schema.
 *
 * @example
 * const OrderPlaced = defineEvent('order.placed', z.object({ orderId: z.string(), total: z.number() }));
 * await producer.publish(orders, OrderPlaced.create({ orderId: 'o-1', total: 12 }));
 * await consumer.subscribe(orders, OrderPlaced, (m) => m.data.total);
 */
export function defineEvent<S extends StandardSchemaV1>(type: string, schema: S): EventContract<S> {
  if (typeof type !== 'string' || type.length === 0) {
    throw new ConfigurationError('defineEvent needs a non-empty event type, e.g. "order.placed"');
  }
  // arktype schemas are functions, zod and valibot ones objects: both carry `~standard`.
  if (
    (typeof schema !== 'object' && typeof schema !== 'function') ||
    schema === null ||
    !('~standard' in schema) ||
    typeof (schema as Partial<StandardSchemaV1>)['~standard']?.validate !== 'function'
  ) {
    throw new ConfigurationError(
      `defineEvent("${type}") needs a Standard Schema (zod 4, valibot 1, arktype 2...): the schema has no "~standard" property`,
      { code: ErrorCode.CONFIGURATION },
    );
  }
  const contract: EventContract<S> = Object.freeze({
    type,
    schema,
    create(data: InferInput<S>, extras: EventExtras = {}): ContractMessage<S> {
      return Object.freeze({ ...extras, type, data, [CONTRACT]: contract });
    },
    parse: (data: unknown) => validate(schema, type, data),
  });
  return contract;
}

/** The contract that created an outgoing message, if any. */
export function contractOf(message: OutgoingMessage): EventContract | undefined {
  return (message as Partial<ContractMessage<StandardSchemaV1>>)[CONTRACT];
}

/** True when `value` is an event contract. */
export function isEventContract(value: unknown): value is EventContract {
  return (
    typeof value === 'object' &&
    value !== null &&
    'schema' in value &&
    'create' in value &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}

/** Runs a Standard Schema. @throws ValidationError with the schema's issues. */
export async function validate<S extends StandardSchemaV1>(schema: S, type: string, data: unknown): Promise<Infer<S>> {
  const result = await schema['~standard'].validate(data);
  if (result.issues === undefined) return result.value;
  const issues = result.issues.map((issue) => ({
    message: issue.message,
    ...(issue.path === undefined
      ? {}
      : { path: issue.path.map((p) => (typeof p === 'object' && p !== null ? p.key : p)) }),
  }));
  const first = issues[0];
  const where = first?.path !== undefined && first.path.length > 0 ? ` at ${first.path.map(String).join('.')}` : '';
  throw new ValidationError(
    `Invalid "${type}" event: ${first?.message ?? 'schema rejected the data'}${where}${issues.length > 1 ? ` (+${issues.length - 1} more issues)` : ''}`,
    issues,
  );
}
